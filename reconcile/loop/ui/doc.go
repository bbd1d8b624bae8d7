// Package ui is the status page of `pandasync run`: a read-only web UI
// served on the admin listener next to /healthz, /readyz, /metrics, /status
// and POST /sync.
//
// The pages are rendered on the server with html/template, which escapes
// every value; the style sheet and the one small script (auto-refresh)
// are embedded in the binary, and the pages work without JavaScript. A
// Content-Security-Policy allows nothing from elsewhere.
//
//	GET  /               overview: what needs a person first (blocked
//	                     changes with the commands that approve them once,
//	                     unresolved mappings, conflicts, problems, failed
//	                     changes, a rejected spec), then the loop's state,
//	                     the spec, the last and next pass, one row per
//	                     mapping and the latest changes
//	GET  /passes         the pass history, filtered by ?outcome= and ?mapping=
//	GET  /passes/{id}    one pass: every change before → after, failed
//	                     changes with the error, blocked changes, problems
//	GET  /explain?q=     one person: the mappings and groups that include
//	                     them with the nesting path, what the next plan would
//	                     do and why, and their audit history
//	POST /sync           "Sync now", the only action (CSRF-protected)
//	GET  /login, POST /login, POST /logout
//
// Access. Without an admin token (a loopback listener only) the pages are
// open. With one (SyncPolicy spec.admin.token), every page needs it: a
// browser signs in once on /login, which sets an HttpOnly, SameSite=Strict
// session cookie (the token itself never leaves the server again and is
// never put in a URL); scripts send "Authorization: Bearer TOKEN". A
// session ends after 12 hours, on sign-out, and as soon as the token in
// force changes.
//
// CSRF. Every request that is not GET or HEAD must pass
// net/http.CrossOriginProtection (Sec-Fetch-Site, else Origin against Host),
// so another site cannot post to the listener, even on loopback without a
// token. The page's forms also carry a token bound to an HttpOnly cookie.
//
// Explain. The People page needs a plan. It makes a read-only one on
// demand (Observe: AD and Asset Panda are read, nothing is written) and
// explains every person from it: no two such plans start less than
// PlanExplainer.MinInterval apart (default one minute), and one is reused
// until a pass finishes or it is MaxAge old (default five minutes). Within
// the interval a stale plan is shown with its age rather than read again.
package ui
