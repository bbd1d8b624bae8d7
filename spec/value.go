package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// redacted replaces a secret given as a literal in String, GoString and
// LogValue output. Validation rejects such literals, so it only shows up for
// specs that failed to load.
const redacted = "[redacted]"

// String returns "{env: NAME}", "{file: PATH}" or the literal. It is meant
// for messages about non-secret values; the String, GoString and LogValue
// methods of the specs holding secrets print a secret literal as
// "[redacted]" (Load refuses such literals anyway).
func (v Value) String() string {
	switch {
	case v.Env != "":
		return "{env: " + v.Env + "}"
	case v.File != "":
		return "{file: " + v.File + "}"
	default:
		return v.Literal
	}
}

// safeString is String with a literal replaced by [redacted]; used for
// secrets.
func (v Value) safeString() string {
	if v.Env == "" && v.File == "" && v.Literal != "" {
		return redacted
	}
	return v.String()
}

// IsZero reports whether no literal, env or file is set.
func (v Value) IsZero() bool {
	return v.Literal == "" && v.Env == "" && v.File == ""
}

// IsLiteral reports whether v is a literal (possibly empty) rather than a
// reference to the environment or a file.
func (v Value) IsLiteral() bool {
	return v.Env == "" && v.File == ""
}

// MarshalJSON writes a literal as a JSON string and a reference as
// {"env": NAME} or {"file": PATH}.
func (v Value) MarshalJSON() ([]byte, error) {
	switch {
	case v.Env != "":
		return json.Marshal(map[string]string{"env": v.Env})
	case v.File != "":
		return json.Marshal(map[string]string{"file": v.File})
	default:
		return json.Marshal(v.Literal)
	}
}

// valueShapeMessage says what a Value may look like. Messages built from it
// never include the input, which may be a secret.
const valueShapeMessage = "must be a string, {env: NAME} or {file: PATH}"

// UnmarshalJSON reads a JSON string as a literal, or an object with exactly
// one key, "env" or "file", whose value is a non-empty string. Errors never
// quote the input, which may be a secret.
func (v *Value) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return errors.New("invalid JSON string")
		}
		*v = Value{Literal: s}
		return nil
	}
	if len(data) == 0 || data[0] != '{' {
		return errors.New(valueShapeMessage)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return errors.New(valueShapeMessage)
	}
	ref, msg := valueFromMap(m)
	if msg != "" {
		return errors.New(msg)
	}
	*v = ref
	return nil
}

// valueFromMap turns a decoded {env: X} / {file: X} object into a Value, or
// returns a message saying what is wrong with it (never quoting values).
func valueFromMap(m map[string]any) (Value, string) {
	if len(m) != 1 {
		return Value{}, fmt.Sprintf("%s: an object must have exactly one key, env or file, found %d", valueShapeMessage, len(m))
	}
	for k, raw := range m {
		s, ok := raw.(string)
		switch {
		case k != "env" && k != "file":
			// The key is not quoted: it might be a secret typed in the
			// wrong place.
			return Value{}, fmt.Sprintf("%s: an object's only key must be env or file", valueShapeMessage)
		case !ok:
			return Value{}, fmt.Sprintf("%s: %s must be a string, got %s", valueShapeMessage, k, describe(raw))
		case s == "":
			return Value{}, fmt.Sprintf("%s: %s must not be empty", valueShapeMessage, k)
		case k == "env":
			return Value{Env: s}, ""
		default:
			return Value{File: s}, ""
		}
	}
	return Value{}, valueShapeMessage // unreachable: len(m) == 1
}

// Resolver turns Values into strings by reading the environment and files.
// Its zero value uses os.LookupEnv and os.ReadFile; tests set the fields.
type Resolver struct {
	// LookupEnv looks up an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads a whole file; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// Resolve returns the literal, the value of the environment variable, or
// the content of the file with one trailing newline removed. An unset or
// empty variable and an empty file are errors. Errors name the variable or
// file but never include a value or file content.
func (r Resolver) Resolve(v Value) (string, error) {
	switch {
	case v.Env != "":
		lookup := r.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		s, ok := lookup(v.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", v.Env)
		}
		if s == "" {
			return "", fmt.Errorf("environment variable %s is empty", v.Env)
		}
		return s, nil
	case v.File != "":
		read := r.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		b, err := read(v.File)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				// The PathError already names the file.
				return "", fmt.Errorf("reading secret file: %w", err)
			}
			return "", fmt.Errorf("reading file %s: %w", v.File, err)
		}
		s := string(b)
		if t, ok := strings.CutSuffix(s, "\n"); ok {
			s = strings.TrimSuffix(t, "\r")
		}
		if s == "" {
			return "", fmt.Errorf("file %s is empty", v.File)
		}
		return s, nil
	default:
		return v.Literal, nil
	}
}

// MarshalJSON writes the duration as a Go duration string such as "1h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}

// UnmarshalJSON reads a Go duration string such as "90s" or "1h30m".
func (d *Duration) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New(durationMessage)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%s, got %q", durationMessage, s)
	}
	d.Duration = v
	return nil
}

const durationMessage = `must be a duration such as "90s", "15m" or "1h"`

// String describes the directory settings with secrets redacted.
func (d DirectorySpec) String() string {
	return fmt.Sprintf("{urls: %v, baseDN: %s, bindDN: %s, password: %s, startTLS: %t, caFile: %s, insecureSkipVerify: %t, allowCleartextBind: %t, timeout: %s}",
		d.URLs, d.BaseDN, d.BindDN, d.Password.safeString(), d.StartTLS, d.CAFile, d.InsecureSkipVerify, d.AllowCleartextBind, d.Timeout.Duration)
}

// GoString is String, so that %#v does not print secrets either.
func (d DirectorySpec) GoString() string { return "spec.DirectorySpec" + d.String() }

// LogValue logs the directory settings with secrets redacted.
func (d DirectorySpec) LogValue() slog.Value {
	urls := make([]string, len(d.URLs))
	for i, u := range d.URLs {
		urls[i] = u.String()
	}
	return slog.GroupValue(
		slog.Any("urls", urls),
		slog.String("baseDN", d.BaseDN.String()),
		slog.String("bindDN", d.BindDN.String()),
		slog.String("password", d.Password.safeString()),
		slog.Bool("startTLS", d.StartTLS),
		slog.String("caFile", d.CAFile.String()),
		slog.Bool("insecureSkipVerify", d.InsecureSkipVerify),
		slog.Bool("allowCleartextBind", d.AllowCleartextBind),
		slog.Duration("timeout", d.Timeout.Duration),
	)
}

// String describes the Asset Panda settings with secrets redacted.
func (a AssetPandaSpec) String() string {
	return fmt.Sprintf("{url: %s, clientID: %s, clientSecret: %s, email: %s, password: %s, rateLimit: %d per %s}",
		a.URL, a.ClientID, a.ClientSecret.safeString(), a.Email, a.Password.safeString(), a.RateLimit.Requests, a.RateLimit.Per.Duration)
}

// GoString is String, so that %#v does not print secrets either.
func (a AssetPandaSpec) GoString() string { return "spec.AssetPandaSpec" + a.String() }

// LogValue logs the Asset Panda settings with secrets redacted.
func (a AssetPandaSpec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", a.URL.String()),
		slog.String("clientID", a.ClientID.String()),
		slog.String("clientSecret", a.ClientSecret.safeString()),
		slog.String("email", a.Email.String()),
		slog.String("password", a.Password.safeString()),
		slog.Int("rateLimitRequests", a.RateLimit.Requests),
		slog.Duration("rateLimitPer", a.RateLimit.Per.Duration),
	)
}

// String describes the connection with secrets redacted.
func (s ConnectionSpec) String() string {
	return fmt.Sprintf("{directory: %s, assetPanda: %s}", s.Directory, s.AssetPanda)
}

// GoString is String, so that %#v does not print secrets either.
func (s ConnectionSpec) GoString() string { return "spec.ConnectionSpec" + s.String() }

// LogValue logs the connection with secrets redacted.
func (s ConnectionSpec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("directory", s.Directory.LogValue()),
		slog.Any("assetPanda", s.AssetPanda.LogValue()),
	)
}

// String describes the Connection document with secrets redacted.
func (c Connection) String() string {
	return fmt.Sprintf("Connection %q %s", c.Metadata.Name, c.Spec)
}

// GoString is String, so that %#v does not print secrets either.
func (c Connection) GoString() string { return "spec." + c.String() }

// LogValue logs the Connection document with secrets redacted.
func (c Connection) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Metadata.Name),
		slog.Any("spec", c.Spec.LogValue()),
	)
}
