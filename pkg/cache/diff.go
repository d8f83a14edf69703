package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Diff counts the writes of a batch whose values Redis does not hold already: string documents
// that differ, hash fields that differ, sorted-set members whose score differs (or that are
// present where the batch removes them). A batch recomputed from the state Redis reflects has
// none; each one is drift. Set-once keys are not compared.
func (s *Store) Diff(ctx context.Context, b *Batch) (int, error) {
	type check struct {
		want []byte
		cmd  *redis.StringCmd
	}
	var strs []check
	type hcheck struct {
		want [][]byte
		cmd  *redis.SliceCmd
	}
	var hs []hcheck
	type zcheck struct {
		want string
		cmd  *redis.FloatCmd
	}
	var zs []zcheck
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, op := range b.sets {
			strs = append(strs, check{op.val, p.Get(ctx, k)})
		}
		for k, m := range b.hsets {
			fields := make([]string, 0, len(m))
			want := make([][]byte, 0, len(m))
			for f, v := range m {
				fields = append(fields, f)
				want = append(want, v)
			}
			hs = append(hs, hcheck{want, p.HMGet(ctx, k, fields...)})
		}
		for k, m := range b.zsets {
			for member, score := range m {
				zs = append(zs, zcheck{score, p.ZScore(ctx, k, member)})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redis diff: %w", err)
	}
	n := 0
	for _, c := range strs {
		if got, err := c.cmd.Bytes(); err != nil || !bytes.Equal(got, c.want) {
			n++
		}
	}
	for _, c := range hs {
		for i, v := range c.cmd.Val() {
			if str, ok := v.(string); !ok || str != string(c.want[i]) {
				n++
			}
		}
	}
	for _, c := range zs {
		got, err := c.cmd.Result()
		switch {
		case c.want == "":
			if err == nil {
				n++
			}
		case err != nil:
			n++
		default:
			if want, _ := strconv.ParseFloat(c.want, 64); got != want {
				n++
			}
		}
	}
	return n, nil
}
