package sinks

import (
	"context"
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
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/zap"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for name (a server's DNS name, or a client's), signed by the CA, as
// a tls.Certificate and as PEM files of the certificate and the key.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An endpoint behind mTLS with a private CA accepts the sink with the CA, its client certificate
// and the server name, and refuses it (the handshake fails) without any one of them.
func TestHTTPTLSWithCustomCAAndClientCertificate(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	serverCert, _, _ := serverCA.issue(t, "handler.internal", x509.ExtKeyUsageServerAuth)
	_, clientPEM, clientKey := clientCA.issue(t, "poller", x509.ExtKeyUsageClientAuth)
	_, strangerPEM, strangerKey := otherCA.issue(t, "poller", x509.ExtKeyUsageClientAuth)
	clients := x509.NewCertPool()
	clients.AddCert(clientCA.cert)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "poller" {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	caFile := writeFile(t, "ca.pem", serverCA.pem)
	certFile, keyFile := writeFile(t, "client.pem", clientPEM), writeFile(t, "client.key", clientKey)
	strangerCert, strangerKeyFile := writeFile(t, "stranger.pem", strangerPEM), writeFile(t, "stranger.key", strangerKey)
	good := HTTPTLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "handler.internal"}
	tests := []struct {
		name    string
		mod     func(c *HTTPTLSConfig)
		wantErr string
	}{
		{name: "the CA, the client certificate and the server name are accepted", mod: func(*HTTPTLSConfig) {}},
		{name: "without the client certificate the endpoint refuses the handshake", mod: func(c *HTTPTLSConfig) { c.CertFile, c.KeyFile = "", "" },
			wantErr: "certificate required"},
		{name: "a client certificate of another CA is refused", mod: func(c *HTTPTLSConfig) { c.CertFile, c.KeyFile = strangerCert, strangerKeyFile },
			wantErr: "tls: certificate required"}, // the client offers no certificate the endpoint's CAs issued
		{name: "without the CA the endpoint's certificate is not trusted", mod: func(c *HTTPTLSConfig) { c.CAFile = "" },
			wantErr: "certificate signed by unknown authority"},
		{name: "another server name does not match the endpoint's certificate", mod: func(c *HTTPTLSConfig) { c.ServerName = "other.internal" },
			wantErr: "not other.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := good
			tt.mod(&tc)
			cfg := DefaultHTTPConfig()
			cfg.URL, cfg.TLS = srv.URL+"/events", &tc
			h, err := NewHTTP(*cfg, Deps{Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(context.Background())
			err = h.Deliver(context.Background(), testBatch("s", 2))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Deliver() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Deliver() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// The key file's contents never show in an error, even when it does not parse.
func TestHTTPTLSKeyNeverInErrors(t *testing.T) {
	const secret = "MHcCAQEEIBSECRETKEYMATERIAL"
	keyFile := writeFile(t, "bad.key", []byte("-----BEGIN EC PRIVATE KEY-----\n"+secret+"\n-----END EC PRIVATE KEY-----\n"))
	certFile := writeFile(t, "cert.pem", newTestCA(t, "ca").pem)
	cfg := DefaultHTTPConfig()
	cfg.URL, cfg.TLS = "https://handler.internal/events", &HTTPTLSConfig{CertFile: certFile, KeyFile: keyFile}
	_, err := NewHTTP(*cfg, Deps{Logger: zap.NewNop()})
	if err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("NewHTTP() = %v, want a tls.cert_file error", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("NewHTTP() = %v: the error shows the key", err)
	}
}

// sigV4Receiver verifies each request's SigV4 signature the way AWS does: it signs a copy of the
// request (its signed headers only, at its X-Amz-Date) again with the SDK's signer and the
// credentials it knows, and answers 403 unless both signatures are the same.
func sigV4Receiver(t *testing.T, creds aws.Credentials, service, region string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		_, signed, ok := strings.Cut(auth, "SignedHeaders=")
		if err != nil || !ok {
			http.Error(w, "not signed", http.StatusForbidden)
			return
		}
		signed, _, _ = strings.Cut(signed, ",")
		again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
		again.Host = r.Host
		for _, name := range strings.Split(signed, ";") {
			switch name {
			case "host":
			case "content-length":
				again.ContentLength = r.ContentLength
			default:
				again.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
			}
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), service, region, signedAt); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if again.Header.Get("Authorization") != auth {
			http.Error(w, "signature mismatch", http.StatusForbidden)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// SigV4 requests are accepted by a receiver that checks them with the right credentials, and
// refused when signed with a wrong secret key, another service or another region.
func TestHTTPSigV4(t *testing.T) {
	right := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	srv := sigV4Receiver(t, right, "lambda", "eu-west-1")
	tests := []struct {
		name       string
		secret     string
		sigv4      HTTPSigV4Config
		wantStatus int
	}{
		{name: "the right credentials, service and region are accepted", secret: right.SecretAccessKey, sigv4: HTTPSigV4Config{Service: "lambda", Region: "eu-west-1"}},
		{name: "the region defaults to aws.region", secret: right.SecretAccessKey, sigv4: HTTPSigV4Config{Service: "lambda"}},
		{name: "a wrong secret key is refused", secret: "wrong-secret", sigv4: HTTPSigV4Config{Service: "lambda", Region: "eu-west-1"}, wantStatus: 403},
		{name: "another service is refused", secret: right.SecretAccessKey, sigv4: HTTPSigV4Config{Service: "execute-api", Region: "eu-west-1"}, wantStatus: 403},
		{name: "another region is refused", secret: right.SecretAccessKey, sigv4: HTTPSigV4Config{Service: "lambda", Region: "us-east-1"}, wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultHTTPConfig()
			cfg.URL, cfg.SigV4 = srv.URL+"/events?x=1", &tt.sigv4
			awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(right.AccessKeyID, tt.secret, "")}
			h, err := NewHTTP(*cfg, Deps{Logger: zap.NewNop(), AWS: awsCfg})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(context.Background())
			err = h.Deliver(context.Background(), testBatch("s", 2))
			checkStatus(t, err, tt.wantStatus)
			if err != nil && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("Deliver() = %v: the error shows the secret key", err)
			}
		})
	}
}

func checkStatus(t *testing.T, err error, want int) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Errorf("Deliver() = %v, want nil", err)
		}
		return
	}
	if he, ok := errors.AsType[*HTTPError](err); !ok || he.StatusCode != want {
		t.Errorf("Deliver() = %v, want status %d", err, want)
	}
}

// verifyPollerSignature is the receiver's check of the README ("Verifying the HMAC signature"),
// the same code: it accepts a request whose signature matches and whose timestamp is at most five
// minutes from now.
func verifyPollerSignature(secret []byte, r *http.Request, body []byte) bool {
	ts := r.Header.Get("X-Poller-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-Poller-Signature")))
}

// HMAC-signed requests are accepted by a receiver that checks them with the secret, and refused
// when signed with another secret or an old timestamp.
func TestHTTPHMAC(t *testing.T) {
	secret := []byte("0123456789abcdef-webhook-secret")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !verifyPollerSignature(secret, r, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name       string
		secret     string
		now        func() time.Time
		wantStatus int
	}{
		{name: "the right secret is accepted", secret: string(secret)},
		{name: "another secret is refused", secret: "another-secret-of-enough-bytes", wantStatus: 401},
		{name: "a timestamp ten minutes old is refused", secret: string(secret), now: func() time.Time { return time.Now().Add(-10 * time.Minute) }, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultHTTPConfig()
			cfg.URL, cfg.HMAC = srv.URL, &HTTPHMACConfig{Secret: tt.secret}
			h, err := NewHTTP(*cfg, Deps{Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(context.Background())
			if tt.now != nil {
				h.signer.now = tt.now
			}
			err = h.Deliver(context.Background(), testBatch("s", 2))
			checkStatus(t, err, tt.wantStatus)
			if err != nil && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("Deliver() = %v: the error shows the secret", err)
			}
		})
	}
}

// A known vector, computed with openssl: the signature is HMAC-SHA256 over timestamp + "." + body,
// in hex.
func TestHMACSignatureVector(t *testing.T) {
	// printf '1700000000.{"Records":[]}' | openssl dgst -sha256 -hmac 'it is a secret!!'
	const want = "sha256=7b4e22c554a219cd41ee454d314638018923c4f16c2796c51946d6d3586d4f88"
	if got := HMACSignature([]byte("it is a secret!!"), "1700000000", []byte(`{"Records":[]}`)); got != want {
		t.Errorf("HMACSignature() = %s, want %s", got, want)
	}
}

func TestHTTPSecurityConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(c *HTTPConfig)
		wantErr string
	}{
		{name: "a cert_file needs its key_file", mod: func(c *HTTPConfig) { c.TLS = &HTTPTLSConfig{CertFile: "c.pem"} }, wantErr: "tls: set both cert_file and key_file"},
		{name: "tls needs an https url", mod: func(c *HTTPConfig) { c.URL = "http://h/"; c.TLS = &HTTPTLSConfig{ServerName: "h"} }, wantErr: "tls: needs an https url"},
		{name: "sigv4 needs a service", mod: func(c *HTTPConfig) { c.SigV4 = &HTTPSigV4Config{Region: "eu-west-1"} }, wantErr: "sigv4.service: required"},
		{name: "sigv4 sets Authorization", mod: func(c *HTTPConfig) {
			c.SigV4 = &HTTPSigV4Config{Service: "lambda"}
			c.Headers = map[string]string{"authorization": "Bearer x"}
		}, wantErr: "headers.Authorization: is set by sigv4"},
		{name: "a short hmac secret is refused without being shown", mod: func(c *HTTPConfig) { c.HMAC = &HTTPHMACConfig{Secret: "hunter2"} },
			wantErr: "hmac.secret: must be at least 16 bytes"},
		{name: "hmac sets its headers", mod: func(c *HTTPConfig) {
			c.HMAC = &HTTPHMACConfig{Secret: "0123456789abcdef"}
			c.Headers = map[string]string{"X-Poller-Signature": "x"}
		}, wantErr: "headers.X-Poller-Signature: is set by hmac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultHTTPConfig()
			c.URL = "https://handler.internal/events"
			tt.mod(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %v: shows the secret", err)
			}
		})
	}
}
