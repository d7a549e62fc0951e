// Package clientip finds the address of the client behind an HTTP request
// without letting the client choose it.
//
// # Security model
//
// The only address a server can verify is the TCP peer, [net/http.Request.RemoteAddr].
// Anything in X-Forwarded-For (XFF) is text that the client or any hop may have
// written. A client that sends "X-Forwarded-For: 1.2.3.4" to an app that reads
// the leftmost entry becomes 1.2.3.4 in the app's logs, rate limits and session
// list. This package therefore:
//
//   - uses RemoteAddr alone unless trusted proxies are configured; the zero
//     [Resolver] and New(nil) ignore XFF completely;
//   - reads XFF only when the peer is itself a trusted proxy, and then walks it
//     from the right (the entry the trusted proxy appended) leftwards, skipping
//     trusted proxies. The first address that is not a trusted proxy is the
//     client: every hop to its right is a proxy we trust to have appended the
//     address it saw, so that entry could not have been forged by the client.
//     Entries further left may be forged and are never read;
//   - stops at the first entry that is not an IP address ("unknown", empty,
//     obfuscated) and returns the last address it could vouch for (the peer or
//     the rightmost trusted entry), never something left of the garbage;
//   - joins repeated XFF header lines in order, as if comma-separated (the
//     RFC 9110 rule for list fields), so a second line cannot hide a value;
//   - examines at most the rightmost 64 entries and 8 KiB of XFF, so a huge
//     header costs bounded time and no allocation; a longer chain is treated as
//     if it ended there;
//   - returns canonical addresses (zone stripped, IPv4-mapped IPv6 unmapped),
//     so "::ffff:10.1.2.3" and "10.1.2.3", or "fe80::1%eth0" and "fe80::1",
//     compare equal, match the same trusted ranges and reach GeoIP in one form.
//
// Trusted proxies are configured as ranges ("10.0.0.0/8") or single addresses.
// List only the proxies in front of the app that overwrite or append XFF; a
// range that also contains clients lets those clients spoof their address.
//
// The result of [Resolver.ClientIP] is never empty when ok is true. ok is false
// only when RemoteAddr cannot be parsed (for example a Unix socket listener),
// which is a misconfiguration the caller should log before falling back.
package clientip
