package sinks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The http sink's keys for an endpoint on the public internet: TLS with a private CA and a client
// certificate, AWS SigV4 signing (Lambda function URLs and API Gateway with IAM auth), and an HMAC
// signature of each request for webhook receivers. The secrets they hold (the HMAC secret, the
// private key, AWS credentials) never appear in an error, a log line or an on_failure record: errors
// name the files and keys, never their contents.

// HTTPTLSConfig is the http sink's `tls` key.
type HTTPTLSConfig struct {
	// CAFile is a PEM file of the CA certificates that the endpoint's certificate must chain to,
	// instead of the system's; default the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its private key, sent when the endpoint
	// asks for one (mTLS); both or neither. Default none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the endpoint's certificate must hold (and the TLS SNI); default the
	// URL's host.
	ServerName string `yaml:"server_name"`
}

// HTTPSigV4Config is the http sink's `sigv4` key: each request is signed with AWS Signature
// Version 4, with the poller's AWS credentials (the SDK's default chain).
type HTTPSigV4Config struct {
	// Service is the signing name: lambda for a function URL, execute-api for API Gateway; required.
	Service string `yaml:"service"`
	// Region is the endpoint's region; default the poller's aws.region.
	Region string `yaml:"region"`
}

// HTTPHMACConfig is the http sink's `hmac` key.
type HTTPHMACConfig struct {
	// Secret is the shared key (at least 16 bytes; write it as ${VARIABLE} to keep it out of the
	// file); required.
	Secret string `yaml:"secret"`
}

// HMAC headers: X-Poller-Timestamp is the Unix time in seconds of the request, X-Poller-Signature
// "sha256=" and the hex of HMAC-SHA256(secret, timestamp + "." + body).
const (
	HMACTimestampHeader = "X-Poller-Timestamp"
	HMACSignatureHeader = "X-Poller-Signature"
	minHMACSecret       = 16
)

// validateSecurity checks the tls, sigv4 and hmac keys.
func (c *HTTPConfig) validateSecurity() []error {
	var errs []error
	if t := c.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			errs = append(errs, &ConfigError{Key: "tls", Msg: "set both cert_file and key_file, or neither"})
		}
		if u, err := url.Parse(c.URL); err == nil && u.Scheme == "http" {
			errs = append(errs, &ConfigError{Key: "tls", Msg: "needs an https url"})
		}
	}
	if s := c.SigV4; s != nil {
		if s.Service == "" {
			errs = append(errs, &ConfigError{Key: "sigv4.service", Msg: "required (lambda for a function URL, execute-api for API Gateway)"})
		}
		if hasHeader(c.Headers, "Authorization") {
			errs = append(errs, &ConfigError{Key: "headers.Authorization", Msg: "is set by sigv4"})
		}
	}
	if h := c.HMAC; h != nil {
		if len(h.Secret) < minHMACSecret {
			// The message never shows the secret, not even its length.
			errs = append(errs, &ConfigError{Key: "hmac.secret", Msg: fmt.Sprintf("must be at least %d bytes", minHMACSecret)})
		}
		for _, name := range []string{HMACTimestampHeader, HMACSignatureHeader} {
			if hasHeader(c.Headers, name) {
				errs = append(errs, &ConfigError{Key: "headers." + name, Msg: "is set by hmac"})
			}
		}
	}
	return errs
}

func hasHeader(headers map[string]string, name string) bool {
	for k := range headers {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// tlsConfig returns the client TLS config of the tls key, nil without one. It reads the files
// once, at start.
func tlsConfig(t *HTTPTLSConfig) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		// Neither error of LoadX509KeyPair quotes the key: a read error names the file, a parse
		// error says what is wrong.
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s and key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// requestSigner adds the hmac and sigv4 headers to a request, right before it is sent. It is safe
// for concurrent use; all fields are immutable after newRequestSigner.
type requestSigner struct {
	hmacKey []byte // nil without hmac
	v4      *v4.Signer
	creds   aws.CredentialsProvider
	service string
	region  string
	now     func() time.Time
}

// newRequestSigner returns the signer of the hmac and sigv4 keys, nil when neither is set.
func newRequestSigner(cfg HTTPConfig, awsCfg aws.Config) (*requestSigner, error) {
	if cfg.HMAC == nil && cfg.SigV4 == nil {
		return nil, nil
	}
	s := &requestSigner{now: time.Now}
	if cfg.HMAC != nil {
		s.hmacKey = []byte(cfg.HMAC.Secret)
	}
	if cfg.SigV4 != nil {
		if awsCfg.Credentials == nil {
			return nil, errors.New("sigv4: no AWS credentials to sign with")
		}
		s.v4, s.creds, s.service = v4.NewSigner(), awsCfg.Credentials, cfg.SigV4.Service
		s.region = cfg.SigV4.Region
		if s.region == "" {
			s.region = awsCfg.Region
		}
		if s.region == "" {
			return nil, errors.New("sigv4: no region: set sigv4.region or aws.region")
		}
	}
	return s, nil
}

// sign sets the HMAC headers, then signs the request with SigV4 (which then covers them too).
func (s *requestSigner) sign(ctx context.Context, req *http.Request, body []byte) error {
	now := s.now()
	if s.hmacKey != nil {
		ts := strconv.FormatInt(now.Unix(), 10)
		req.Header.Set(HMACTimestampHeader, ts)
		req.Header.Set(HMACSignatureHeader, HMACSignature(s.hmacKey, ts, body))
	}
	if s.v4 == nil {
		return nil
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("sigv4: retrieve AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := s.v4.SignHTTP(ctx, creds, req, hash, s.service, s.region, now); err != nil {
		return fmt.Errorf("sigv4: sign the request: %w", err)
	}
	return nil
}

// HMACSignature returns the X-Poller-Signature value of a request: "sha256=" and the hex of
// HMAC-SHA256(secret, timestamp + "." + body). A receiver recomputes it over the raw body it got
// and compares with hmac.Equal.
func HMACSignature(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
