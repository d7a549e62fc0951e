package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
)

// The browser test drives Debian's Chromium, headless, against the example
// served in-process on a real redis-server: two devices of alice, one
// revoking the other; carol, a support agent, revoking alice's phone from
// the support desk; and bob's one-session limit. It is skipped only when
// Chromium cannot be found or started (`make test` installs it).

// desktopUA is the laptop's User-Agent: Chrome on macOS, so the devices
// page shows what a user would see rather than "HeadlessChrome on Linux".
const desktopUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// findChromium returns the Chromium binary, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("browser test skipped: Chromium not found (looked for chromium, chromium-browser, google-chrome on PATH and /usr/bin/chromium; `make test` installs it with apt-get, or set CHROMIUM=/path/to/chrome)")
	return ""
}

// artifactsDir is where the screenshots go: $ARTIFACTS_DIR, or
// testdata/artifacts at the repository root (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// browserDevice is one browser with its own cookies: an isolated browser context
// (like a separate profile) in the shared Chromium process.
type browserDevice struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string
}

// newDevice opens an isolated browser context that claims to be at ip (via
// X-Forwarded-For from the trusted loopback proxy) and emulates dev, or a
// desktop Chrome with a 1280-pixel-wide window when dev is nil.
func newDevice(t *testing.T, browser context.Context, base, name, ip string, dev chromedp.Device) *browserDevice {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	emulate := chromedp.Steps(
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: desktopUA})
			return err
		}),
		chromedp.EmulateViewport(1280, 900),
	)
	if dev != nil {
		emulate = chromedp.Emulate(dev)
	}
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
				Headers: network.Headers{"X-Forwarded-For": ip},
			})
			return err
		}),
		emulate,
	)
	if err != nil {
		t.Fatalf("%s: setting up the browser context: %v", name, err)
	}
	return &browserDevice{t: t, name: name, ctx: ctx, base: base}
}

// step bounds one browser step, so a hung page fails the test instead of
// waiting for the test binary's timeout.
func (d *browserDevice) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.ctx, 15*time.Second)
}

// open navigates to path and returns where the browser ended up, after redirects.
func (d *browserDevice) open(path string) string {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(d.base+path)); err != nil {
		d.t.Fatalf("%s: open %s: %v", d.name, path, err)
	}
	return d.location()
}

// location is the path and query the browser shows.
func (d *browserDevice) location() string {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		d.t.Fatalf("%s: location: %v", d.name, err)
	}
	return strings.TrimPrefix(loc, d.base)
}

// submit clicks the element sel (a form's button or a link) and waits for
// the page it leads to; it returns where the browser ended up.
func (d *browserDevice) submit(sel string) string {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		d.t.Fatalf("%s: click %s: %v", d.name, sel, err)
	}
	if resp.Status != 200 {
		d.t.Errorf("%s: click %s: got status %d, want 200", d.name, sel, resp.Status)
	}
	return d.location()
}

// login signs in through the form, as a person would.
func (d *browserDevice) login(user string) string {
	d.t.Helper()
	d.open("/login")
	ctx, cancel := d.step()
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), user, chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.ID("password"), "password", chromedp.NodeVisible),
	)
	if err != nil {
		d.t.Fatalf("%s: filling the login form: %v", d.name, err)
	}
	loc := d.submit(`button[type="submit"]`)
	if !strings.HasPrefix(loc, "/devices") {
		d.t.Fatalf("%s: after signing in as %s: got %s, want /devices", d.name, user, loc)
	}
	return loc
}

// text returns the text of the first element matching the CSS selector sel.
func (d *browserDevice) text(sel string) string {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		d.t.Fatalf("%s: text of %s: %v", d.name, sel, err)
	}
	return strings.TrimSpace(s)
}

// attr returns the attribute name of the first element matching the CSS selector sel.
func (d *browserDevice) attr(sel, name string) string {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil || !v.Exists {
		d.t.Fatalf("%s: attribute %s of %s: %v (exists %v)", d.name, name, sel, err, v.Exists)
	}
	return v.Value
}

// count returns how many elements match the CSS selector sel.
func (d *browserDevice) count(sel string) int {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		d.t.Fatalf("%s: count %s: %v", d.name, sel, err)
	}
	return n
}

// screenshot saves the whole page as a PNG in the artifacts directory.
func (d *browserDevice) screenshot(dir, file string) {
	d.t.Helper()
	ctx, cancel := d.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		d.t.Fatalf("%s: screenshot: %v", d.name, err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("screenshot: %s", path)
}

func TestBrowser(t *testing.T) {
	bin := findChromium(t)
	artifacts := artifactsDir(t)

	cfg := testConfig(t)
	cfg.GeoIPPath = writeGeoIPDB(t)
	// The devices claim their addresses through X-Forwarded-For, which the
	// example believes only from this (loopback) proxy.
	cfg.TrustedProxies = []string{"127.0.0.1/32"}
	ra := startApp(t, cfg)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container: Chromium's sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// Start Chromium. Only this step may skip the test: every failure after
	// it is a failure of the example.
	if err := chromedp.Do(browser); err != nil {
		t.Skipf("browser test skipped: Chromium at %s could not be started: %v", bin, err)
	}

	t.Run("alice revokes her other device", func(t *testing.T) {
		laptop := newDevice(t, browser, ra.URL, "alice's laptop", "81.2.69.142", nil)
		phone := newDevice(t, browser, ra.URL, "alice's phone", "2a01:e0a::1", device.IPhone13)
		laptop.login("alice")
		phone.login("alice")

		if loc := laptop.open("/devices"); loc != "/devices" {
			t.Fatalf("laptop: got %s, want /devices", loc)
		}
		if n := laptop.count("li.device"); n != 2 {
			t.Fatalf("laptop: got %d devices, want 2", n)
		}
		if got := laptop.text("li.device-current .device-label"); !strings.Contains(got, "Chrome 131 on macOS") || !strings.Contains(strings.ToLower(got), "this device") {
			t.Errorf("laptop: got this device labelled %q, want Chrome 131 on macOS with the This device badge", got)
		}
		if got := laptop.text("li.device:not(.device-current) .device-label"); got != "Safari on iPhone" {
			t.Errorf("laptop: got the other device labelled %q, want Safari on iPhone", got)
		}
		if got := laptop.text("li.device:not(.device-current) .facts"); !strings.Contains(got, "Paris, Île-de-France, FR") || !strings.Contains(got, "2a01:e0a::1") {
			t.Errorf("laptop: got the phone's facts %q, want Paris and 2a01:e0a::1", got)
		}

		// Load a provider's accounts; the access shows on this device.
		if loc := laptop.submit("#load-schwab"); loc != "/providers/schwab/accounts" {
			t.Fatalf("laptop: got %s, want the Schwab accounts page", loc)
		}
		if n := laptop.count("#accounts tbody tr"); n == 0 {
			t.Errorf("laptop: got no Schwab accounts")
		}
		laptop.submit(`a[href="/devices"].btn-primary`)
		if got := laptop.text("li.device-current .providers"); !strings.Contains(got, "Schwab") {
			t.Errorf("laptop: got providers %q on this device, want Schwab", got)
		}
		if got := laptop.text("#timeline"); !strings.Contains(got, "Opened Schwab accounts") {
			t.Errorf("laptop: got timeline %q, want the Schwab access", got)
		}
		laptop.screenshot(artifacts, "devices-alice-laptop.png")
		phone.open("/devices")
		phone.screenshot(artifacts, "devices-alice-phone.png")

		// Revoke the phone from the laptop.
		if loc := laptop.submit("li.device:not(.device-current) button.revoke"); loc != "/devices" {
			t.Fatalf("laptop: after revoking got %s, want /devices", loc)
		}
		// A flash message kept in the session's data, shown once.
		if got := laptop.text("#notice"); got != "Signed out Safari on iPhone." {
			t.Errorf("laptop: got notice %q, want \"Signed out Safari on iPhone.\"", got)
		}
		if n := laptop.count("li.device"); n != 1 {
			t.Errorf("laptop: got %d devices after revoking, want 1", n)
		}
		laptop.screenshot(artifacts, "devices-alice-after-revoke.png")

		// The phone's next navigation lands on the login page, which says why.
		if got, want := phone.open("/devices"), "/login?reason=session_revoked&revoked_reason=revoked_by_user"; got != want {
			t.Fatalf("phone: got %s, want %s", got, want)
		}
		if got := phone.text("#reason"); !strings.Contains(got, "This session was revoked") {
			t.Errorf("phone: got reason %q, want it to say the session was revoked", got)
		}
		phone.screenshot(artifacts, "login-revoked-phone.png")
	})

	t.Run("carol, from the support desk, signs alice's phone out", func(t *testing.T) {
		laptop := newDevice(t, browser, ra.URL, "alice's laptop", "81.2.69.142", nil)
		phone := newDevice(t, browser, ra.URL, "alice's phone", "2a01:e0a::1", device.IPhone13)
		carol := newDevice(t, browser, ra.URL, "carol's desk", "81.2.69.160", nil)
		laptop.login("alice")
		phone.login("alice")
		carol.login("carol")
		phoneID := phone.attr("li.device-current", "data-session-id")

		// carol finds alice by name.
		if loc := carol.open("/admin"); loc != "/admin" {
			t.Fatalf("carol: got %s, want /admin", loc)
		}
		ctx, cancel := carol.step()
		err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("user-search"), "alice", chromedp.NodeVisible))
		cancel()
		if err != nil {
			t.Fatalf("carol: typing the name: %v", err)
		}
		if loc := carol.submit("#find"); loc != "/admin?user=alice" {
			t.Fatalf("carol: after searching got %s, want /admin?user=alice", loc)
		}
		row := `li.device[data-session-id="` + phoneID + `"]`
		if got := carol.text(row + " .device-label"); got != "Safari on iPhone" {
			t.Errorf("carol: got alice's phone labelled %q, want Safari on iPhone", got)
		}
		if got := carol.text(row + " .facts"); !strings.Contains(got, "Paris, Île-de-France, FR") || !strings.Contains(got, "2a01:e0a::1") {
			t.Errorf("carol: got the phone's facts %q, want Paris and 2a01:e0a::1", got)
		}
		carol.screenshot(artifacts, "support-desk-carol.png")

		// She signs the phone out.
		if loc := carol.submit(row + " button.revoke"); loc != "/admin?user=alice&revoked=1" {
			t.Fatalf("carol: after revoking got %s, want /admin?user=alice&revoked=1", loc)
		}
		if n := carol.count(row); n != 0 {
			t.Errorf("carol: the phone is still listed after revoking it")
		}
		if got := carol.text("#timeline"); !strings.Contains(got, "Signed out by support (carol)") {
			t.Errorf("carol: got timeline %q, want her sign-out in it", got)
		}
		carol.screenshot(artifacts, "support-desk-after-revoke.png")

		// alice's laptop shows who did it; the phone lands on the login page.
		if loc := laptop.open("/devices"); loc != "/devices" {
			t.Fatalf("laptop: got %s, want /devices", loc)
		}
		if got := laptop.text("#timeline"); !strings.Contains(got, "Signed out by support (carol)") {
			t.Errorf("laptop: got timeline %q, want \"Signed out by support (carol)\"", got)
		}
		laptop.screenshot(artifacts, "devices-alice-after-support.png")
		if got, want := phone.open("/devices"), "/login?reason=session_revoked&revoked_reason=revoked_by_support"; got != want {
			t.Fatalf("phone: got %s, want %s", got, want)
		}
		if got := phone.text("#reason"); !strings.Contains(got, "The support team signed it out.") {
			t.Errorf("phone: got reason %q, want it to say support signed it out", got)
		}
		phone.screenshot(artifacts, "login-revoked-by-support-phone.png")
	})

	t.Run("bob's second sign-in signs the first out", func(t *testing.T) {
		first := newDevice(t, browser, ra.URL, "bob's first browser", "200.160.1.1", nil)
		second := newDevice(t, browser, ra.URL, "bob's second browser", "81.2.69.7", nil)
		first.login("bob")
		if loc := second.login("bob"); loc != "/devices?evicted=1" {
			t.Errorf("second: got %s, want /devices?evicted=1", loc)
		}
		if got := second.text("#notice"); !strings.Contains(got, "your oldest session elsewhere was signed out") {
			t.Errorf("second: got notice %q, want the eviction explained", got)
		}
		if n := second.count("li.device"); n != 1 {
			t.Errorf("second: got %d devices, want 1", n)
		}
		if loc := first.open("/devices"); loc != "/login?reason=session_limit_exceeded" {
			t.Fatalf("first: got %s, want /login?reason=session_limit_exceeded", loc)
		}
		want := "You were signed out because you signed in on another device (session limit)."
		if got := first.text("#reason"); got != want {
			t.Errorf("first: got reason %q, want %q", got, want)
		}
		first.screenshot(artifacts, "login-session-limit.png")
	})
}
