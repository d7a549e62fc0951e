package redistest

import "strings"

// slotCount is the number of hash slots in a Redis Cluster.
const slotCount = 16384

// KeySlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key modulo 16384. If the key holds a non-empty hash tag, the part between
// the first '{' and the first '}' after it, only the tag is hashed, so
// "{user1}:a" and "{user1}:b" share a slot.
func KeySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return int(crc16(key)) % slotCount
}

// crc16 is CRC-16/XMODEM: polynomial 0x1021, initial value 0, no
// reflection, as the Redis Cluster specification defines it.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
