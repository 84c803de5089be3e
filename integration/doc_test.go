// Package integration holds tailor's end-to-end tests: the demo shop as a
// real process driven by a real browser (Debian's Chromium through
// chromedp), real Redis and PostgreSQL servers, and a real Segment-spec
// client. Tests skip when a service is missing, and fail instead under
// TAILOR_INTEGRATION=require (as in CI); see internal/testenv.
package integration_test
