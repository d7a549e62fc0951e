// Package announce is the format of sessionkit's revocation announcements:
// the Pub/Sub messages with which the store's scripts tell every instance's
// cache which sessions stopped being valid.
//
// A message is "<tag hex>:<member>,<member>...": the members of one user's
// slot (see sessionid), published on Channel(prefix) by the script that
// revoked or evicted them. Go builds the head (Head) and hands it to the
// script, which appends the members it ended, comma-separated.
package announce

import (
	"strings"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/sessionid"
)

// Channel is the Pub/Sub channel of the store whose keys start with prefix.
func Channel(prefix string) string { return prefix + "revoked" }

// Head is the start of an announcement of sessions in t's slot; the script
// appends the members.
func Head(t sessionid.Tag) string { return t.Hex() + ":" }

// Separator joins the members of one announcement.
const Separator = ","

// Parse decodes an announcement into session ids; malformed parts are skipped.
func Parse(msg string) []uuid.UUID {
	tagHex, members, ok := strings.Cut(msg, ":")
	if !ok {
		return nil
	}
	t, ok := sessionid.ParseTag(tagHex)
	if !ok {
		return nil
	}
	var ids []uuid.UUID
	for m := range strings.SplitSeq(members, Separator) {
		if id, ok := sessionid.FromMember(t, m); ok {
			ids = append(ids, id)
		}
	}
	return ids
}
