package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// A Redis Cluster spreads keys over several servers and refuses a
// multi-key command whose keys hash to different slots (CROSSSLOT), even
// when both slots live on one node. This file splits many-key work into
// groups of one slot and reaches every master for Clear.

// topology says how keys map to servers.
type topology uint8

const (
	// oneServer: standalone or Sentinel; any keys go in one command.
	oneServer topology = iota
	// clusterSlots: keys of one hash slot go in one command.
	clusterSlots
)

// groups splits keys into groups that one command may name together,
// returning each group as indexes into keys, in key order within a group.
func (t topology) groups(keys []string) [][]int {
	switch {
	case len(keys) == 0:
		return nil
	case t == oneServer || len(keys) == 1:
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	bySlot := make(map[uint16]int, len(keys)) // slot → index in out
	var out [][]int
	for i, k := range keys {
		s := clusterSlot(k)
		g, ok := bySlot[s]
		if !ok {
			g = len(out)
			bySlot[s] = g
			out = append(out, nil)
		}
		out[g] = append(out[g], i)
	}
	return out
}

// forEachServer calls fn with a client for every server that holds keys:
// the client itself, or every cluster master, concurrently (the first error
// wins). ClusterClient.FlushDB and Scan would reach one master only.
func (r *Backend) forEachServer(ctx context.Context, fn func(ctx context.Context, c goredis.Cmdable) error) error {
	if c, ok := r.client.(*goredis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, r.client)
}

// clusterSlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM)
// of the key, or of its hash tag (the text between the first "{" and the
// next "}", when that is not empty), modulo 16384.
func clusterSlot(key string) uint16 {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j > i+1 {
					key = key[i+1 : j]
				}
				break
			}
		}
		break
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^key[i]]
	}
	return crc % 16384
}

// crc16Table is the CRC-16/XMODEM table (polynomial 0x1021) that Redis
// Cluster hashes keys with.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
