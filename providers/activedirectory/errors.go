package activedirectory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Error is every error the Reader's methods return (New, Ping, Read,
// ReadChanges, Lookup, Find, Schema), classified so that callers need not know LDAP result
// codes: Terminal reports whether trying again can help without a person
// changing something. Its text never contains the bind password.
type Error struct {
	Err error // the failure with its context; Error returns its text
	// Code is the LDAP result code of the failure (e.g. 49 invalidCredentials),
	// 0 when the failure is not an LDAP result (network, TLS, validation).
	Code int
	// Subcode is Active Directory's sub-code of a rejected bind, the "data
	// 52e" in the server's diagnostic message, lower case; "" when absent.
	Subcode string
	// Reason says in plain words why a bind was rejected ("the password is
	// wrong"); "" for other failures.
	Reason string

	terminal bool
}

// Error returns the failure's text.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying failure.
func (e *Error) Unwrap() error { return e.Err }

// Terminal reports whether retrying cannot help until someone acts:
// rejected credentials or account states (wrong password, locked, disabled,
// expired), insufficient access rights, a server demanding stronger
// authentication or an encrypted connection, a certificate that does not
// verify, an invalid configuration or query. Network errors, timeouts and a
// busy or unavailable server are not terminal.
func (e *Error) Terminal() bool { return e.terminal }

// bindSubcode is what one AD bind sub-code means and how to fix it.
type bindSubcode struct{ reason, fix string }

// bindSubcodes are the AD sub-codes of invalidCredentials (49) binds, as in
// Microsoft's list of AcceptSecurityContext errors.
var bindSubcodes = map[string]bindSubcode{
	"525": {"the bind account does not exist", "check bindDN"},
	"52e": {"the password is wrong", "check the password configured for the bind account"},
	"530": {"the bind account may not log on at this time (logon hours)", "allow the bind account to log on at all hours"},
	"531": {"the bind account may not log on from this computer (logon workstations)", "allow the bind account to log on from any computer"},
	"532": {"the bind account's password has expired", "set a new password for it (service accounts usually have \"password never expires\")"},
	"533": {"the bind account is disabled", "enable it"},
	"701": {"the bind account has expired", "extend or clear its expiry date"},
	"773": {"the bind account must change its password before it can log on", "set a new password and clear \"user must change password at next logon\""},
	"775": {"the bind account is locked out", "unlock it, and check the configured password: repeated wrong passwords lock it again"},
}

// subcodeRE finds AD's sub-code in a diagnostic message such as
// "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563".
var subcodeRE = regexp.MustCompile(`(?i)\bdata ([0-9a-f]{1,8})\b`)

// bindError describes a failed bind in plain words, keeping err (which
// holds the server's diagnostic, never the password) in the chain.
func bindError(url, bindDN string, err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return fmt.Errorf("binding to %s as %s: %w", url, bindDN, err)
	}
	var what string
	switch le.ResultCode {
	case ldap.LDAPResultInvalidCredentials:
		code := subcode(le)
		if sc, ok := bindSubcodes[code]; ok {
			what = fmt.Sprintf("%s (AD data %s); %s", sc.reason, code, sc.fix)
		} else if code != "" {
			what = fmt.Sprintf("the directory rejected the credentials (AD data %s); check bindDN, the password and the account's state", code)
		} else {
			what = "the directory rejected the bind DN or password; check both"
		}
	case ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired:
		what = "the server refuses simple binds without an encrypted connection; use ldaps:// or startTLS"
	case ldap.LDAPResultInappropriateAuthentication:
		what = "the server refuses a simple bind for this account"
	case ldap.LDAPResultInsufficientAccessRights:
		what = "the bind account is not allowed to bind"
	}
	if what == "" {
		return fmt.Errorf("binding to %s as %s: %w", url, bindDN, err)
	}
	return fmt.Errorf("binding to %s as %s: %s: %w", url, bindDN, what, err)
}

// subcode returns AD's sub-code of a rejected bind, lower case, or "".
func subcode(le *ldap.Error) string {
	if le.ResultCode != ldap.LDAPResultInvalidCredentials || le.Err == nil {
		return ""
	}
	m := subcodeRE.FindStringSubmatch(le.Err.Error())
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// terminalCodes are the LDAP result codes that no retry can fix.
var terminalCodes = map[uint16]bool{
	ldap.LDAPResultAuthMethodNotSupported:      true,
	ldap.LDAPResultStrongAuthRequired:          true,
	ldap.LDAPResultConfidentialityRequired:     true,
	ldap.LDAPResultInappropriateAuthentication: true,
	ldap.LDAPResultInvalidCredentials:          true,
	ldap.LDAPResultInsufficientAccessRights:    true,
}

// classify wraps err in an *Error (unless it already is one), deciding
// whether it is terminal from every failure it joins: one terminal failure
// (say, wrong credentials on the second URL after the first was
// unreachable) makes the whole error terminal.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		return e
	}
	out := &Error{Err: err}
	var walk func(error)
	walk = func(err error) {
		switch x := err.(type) {
		case nil:
			return
		case *Error:
			out.terminal = out.terminal || x.terminal
			if out.Code == 0 {
				out.Code, out.Subcode, out.Reason = x.Code, x.Subcode, x.Reason
			}
		case *ldap.Error:
			if terminalCodes[x.ResultCode] {
				out.terminal = true
			}
			if out.Code == 0 || (terminalCodes[x.ResultCode] && !terminalCodes[uint16(out.Code)]) {
				out.Code = int(x.ResultCode)
				out.Subcode = subcode(x)
				out.Reason = bindSubcodes[out.Subcode].reason
			}
		case *tls.CertificateVerificationError, x509.UnknownAuthorityError, x509.HostnameError, x509.CertificateInvalidError,
			*x509.UnknownAuthorityError, *x509.HostnameError, *x509.CertificateInvalidError:
			out.terminal = true
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// A cancelled pass is not a verdict on the directory.
		out.terminal = false
	}
	return out
}

// invalid marks err as a terminal problem of the configuration or query.
func invalid(err error) error { return &Error{Err: err, terminal: true} }
