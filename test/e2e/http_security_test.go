package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
)

// pemPair returns a key and a certificate for name, signed by parent (self-signed, a CA, when
// parent is nil), as x509 values and PEM.
func pemPair(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, DNSNames: []string{name}}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// Behind mTLS with a private CA and an HMAC check, the http sink delivers; and when a batch fails
// for good, neither the HMAC secret nor the client key shows anywhere in the poller's whole log
// (debug level) or in the on_failure record.
func TestHTTPSinkSecretsOfTLSAndHMACNeverShow(t *testing.T) {
	const hmacSecret = "E2E-HMAC-SECRET-0123456789"
	ca, caKey, caPEM, _ := pemPair(t, "e2e CA", nil, nil)
	_, _, serverPEM, serverKey := pemPair(t, "handler.internal", ca, caKey)
	_, _, clientPEM, clientKey := pemPair(t, "poller", ca, caKey)
	serverCert, err := tls.X509KeyPair(serverPEM, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.pem", caPEM), write("client.pem", clientPEM), write("client.key", clientKey)

	// The receiver checks the client certificate (the TLS config) and the HMAC signature of every
	// call; the first verified call is answered 500, the next ones never (the sink's timeout ends
	// them), so the batch goes to on_failure.
	var verified, refused atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(hmacSecret))
		mac.Write([]byte(r.Header.Get("X-Poller-Timestamp") + "." + string(body)))
		if !hmac.Equal([]byte("sha256="+hex.EncodeToString(mac.Sum(nil))), []byte(r.Header.Get("X-Poller-Signature"))) {
			refused.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if verified.Add(1) == 1 {
			http.Error(w, "failing on command", 500)
			return
		}
		<-r.Context().Done()
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table, leases := unique("Secure"), unique("leases")
	createTable(t, db, table)
	writeItems(t, db, table, 0, 3, 10)
	t.Setenv("E2E_HMAC_SECRET", hmacSecret)
	reports := filepath.Join(dir, "failed.jsonl")
	cfg := pipelineConfig{Endpoint: endpoint, Table: table, LeaseTable: leases, SinkURL: srv.URL + "/events",
		Extra: "    max_retry_attempts: 1\n    on_failure:\n      type: file\n      path: " + reports + "\n",
		SinkExtra: "      timeout: 500ms\n      hmac: {secret: \"${E2E_HMAC_SECRET}\"}\n" +
			"      tls: {ca_file: " + caFile + ", cert_file: " + certFile + ", key_file: " + keyFile + ", server_name: handler.internal}\n",
	}.yaml(t)
	p := startPoller(t, cfg)
	waitFor(t, "the failed batch in on_failure", 2*time.Minute, func() bool {
		data, _ := os.ReadFile(reports)
		return strings.Count(string(data), "\n") >= 1
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	if verified.Load() < 2 || refused.Load() != 0 {
		t.Errorf("the receiver verified %d calls and refused %d; want every call (at least 2) signed and over mTLS", verified.Load(), refused.Load())
	}
	onFailure, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	// The key's base64 lines, each long enough not to occur by chance.
	secrets := []string{hmacSecret}
	for _, line := range strings.Split(string(clientKey), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line)
		}
	}
	for name, text := range map[string]string{"the poller's log": p.log.String(), "the on_failure record": string(onFailure)} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a secret (%.12s...)", name, s)
			}
		}
	}
	if !strings.Contains(p.log.String(), "failing on command") {
		t.Errorf("the log does not show the failed call, so the search above proves nothing")
	}
}
