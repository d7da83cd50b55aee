// Client-compatibility scenarios for the Go Kafka clients franz-go (with kadm) and
// Sarama, run against Sluice or Apache Kafka by tests/go_clients.rs.
//
//	clients -bootstrap 127.0.0.1:9092 -broker sluice -scenarios franz-produce-idempotent,sarama-admin
//
// Prints exactly one line per scenario on stdout, `PASS name` or `FAIL name: reason`;
// diagnostics go to stderr. Exits 1 if any scenario failed, 2 on bad arguments.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// env is what every scenario gets.
type env struct {
	bootstrap string
	broker    string // "sluice" or "kafka"
	name      string // scenario name
}

type scenario struct {
	name    string
	timeout time.Duration
	run     func(ctx context.Context, e *env) error
}

var scenarios = []scenario{
	{"franz-produce-idempotent", 60 * time.Second, franzProduce("none")},
	{"franz-produce-gzip", 60 * time.Second, franzProduce("gzip")},
	{"franz-produce-snappy", 60 * time.Second, franzProduce("snappy")},
	{"franz-produce-lz4", 60 * time.Second, franzProduce("lz4")},
	{"franz-produce-zstd", 60 * time.Second, franzProduce("zstd")},
	{"franz-group-cooperative-sticky", 90 * time.Second, franzGroup},
	{"franz-admin", 90 * time.Second, franzAdmin},
	{"sarama-produce-idempotent", 60 * time.Second, saramaProduce("none", true)},
	{"sarama-produce-gzip", 60 * time.Second, saramaProduce("gzip", false)},
	{"sarama-produce-snappy", 60 * time.Second, saramaProduce("snappy", false)},
	{"sarama-produce-lz4", 60 * time.Second, saramaProduce("lz4", false)},
	{"sarama-produce-zstd", 60 * time.Second, saramaProduce("zstd", false)},
	// Sarama's default cfg.Version (2.8: older request versions than the others use).
	{"sarama-produce-zstd-v2.8", 60 * time.Second, saramaProduceAt("zstd", true, sarama.V2_8_0_0)},
	{"sarama-group-range", 90 * time.Second, saramaGroup("range")},
	{"sarama-group-sticky", 90 * time.Second, saramaGroup("sticky")},
	{"sarama-admin", 90 * time.Second, saramaAdmin},
}

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "host:port of the broker")
	broker := flag.String("broker", "sluice", "sluice or kafka")
	list := flag.String("scenarios", "", "comma-separated scenario names, or a prefix ending in * (franz-*); empty: all")
	flag.Parse()
	if *broker != "sluice" && *broker != "kafka" {
		fmt.Fprintf(os.Stderr, "-broker must be sluice or kafka, not %q\n", *broker)
		os.Exit(2)
	}
	var chosen []scenario
	if strings.TrimSpace(*list) == "" {
		chosen = scenarios
	} else {
		for _, want := range strings.Split(*list, ",") {
			want = strings.TrimSpace(want)
			found := false
			for _, s := range scenarios {
				if s.name == want || (strings.HasSuffix(want, "*") && strings.HasPrefix(s.name, strings.TrimSuffix(want, "*"))) {
					chosen = append(chosen, s)
					found = true
				}
			}
			if !found {
				var names []string
				for _, s := range scenarios {
					names = append(names, s.name)
				}
				fmt.Fprintf(os.Stderr, "unknown scenario %q; known: %s\n", want, strings.Join(names, ","))
				os.Exit(2)
			}
		}
	}
	failed := 0
	for _, s := range chosen {
		start := time.Now()
		err := runOne(s, &env{bootstrap: *bootstrap, broker: *broker, name: s.name})
		fmt.Fprintf(os.Stderr, "[%s] took %.1fs\n", s.name, time.Since(start).Seconds())
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %s\n", s.name, oneLine(err.Error()))
		} else {
			fmt.Printf("PASS %s\n", s.name)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// runOne runs a scenario under its context timeout; a scenario that does not return
// within a grace period after its deadline counts as failed (and is left behind).
func runOne(s scenario, e *env) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- s.run(ctx, e)
	}()
	select {
	case err = <-done:
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (scenario timeout %s reached)", err, s.timeout)
		}
		return err
	case <-time.After(s.timeout + 15*time.Second):
		return fmt.Errorf("did not finish within %s (+15s grace)", s.timeout)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " | ")
}

func logf(e *env, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", e.name, fmt.Sprintf(format, args...))
}

// unique names a topic or group for this run: the external broker is shared.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%06x", prefix, time.Now().UnixMilli()%1_000_000_000, rand.Intn(1<<24))
}

// waitFor polls cond every 100 ms until it returns nil or ctx ends; the last
// condition error is returned.
func waitFor(ctx context.Context, what string, cond func() error) error {
	var last error
	for {
		last = cond()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %v (gave up: %v)", what, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ---- the records the produce scenarios write and check ----

type header struct{ key, value string }

// want is one record as produced, and where the producer says it landed.
type want struct {
	key       string
	value     []byte // nil: a null value
	headers   []header
	partition int32
	offset    int64
	ts        time.Time // the record's CreateTime, set by the producer
}

// got is one record as consumed.
type got struct {
	key       string
	value     []byte
	null      bool
	headers   []header
	partition int32
	offset    int64
	codec     int // -1: unknown (Sarama does not expose it)
	producer  int64
	ts        time.Time
}

func testRecords(n int, codec string) []*want {
	var out []*want
	// Distinct CreateTimes, in the past and not in produce order.
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	for i := 0; i < n; i++ {
		w := &want{key: fmt.Sprintf("key-%03d", i%12), ts: base.Add(time.Duration((i*7)%n) * time.Second)}
		if i == 3 {
			w.value = nil // a tombstone: null value
		} else {
			w.value = []byte(fmt.Sprintf("value-%03d-%s-%s", i, codec, strings.Repeat("compressible ", 20)))
		}
		w.headers = []header{{"h-index", fmt.Sprint(i)}, {"h-codec", codec}, {"h-empty", ""}}
		if i%5 == 0 {
			w.headers = append(w.headers, header{"h-index", "dup"}) // repeated header key
		}
		out = append(out, w)
	}
	return out
}

var codecIDs = map[string]int{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// checkReadBack compares consumed records with what was produced, by (partition, offset).
// wantCodec < 0 skips the codec check.
func checkReadBack(wants []*want, gots []got, wantCodec int, wantProducerID bool) error {
	byPos := map[[2]int64]got{}
	for _, g := range gots {
		k := [2]int64{int64(g.partition), g.offset}
		if _, dup := byPos[k]; dup {
			return fmt.Errorf("record %d/%d consumed twice", g.partition, g.offset)
		}
		byPos[k] = g
	}
	if len(gots) != len(wants) {
		return fmt.Errorf("consumed %d records, produced %d", len(gots), len(wants))
	}
	for i, w := range wants {
		g, ok := byPos[[2]int64{int64(w.partition), w.offset}]
		if !ok {
			return fmt.Errorf("record #%d (%d/%d) not consumed", i, w.partition, w.offset)
		}
		if g.key != w.key {
			return fmt.Errorf("record #%d: key %q, want %q", i, g.key, w.key)
		}
		if w.value == nil {
			if !g.null {
				return fmt.Errorf("record #%d: value %q, want null", i, g.value)
			}
		} else if g.null || string(g.value) != string(w.value) {
			return fmt.Errorf("record #%d: value %q (null %v), want %q", i, g.value, g.null, w.value)
		}
		if fmt.Sprint(g.headers) != fmt.Sprint(w.headers) {
			return fmt.Errorf("record #%d: headers %v, want %v", i, g.headers, w.headers)
		}
		if !g.ts.Equal(w.ts) {
			return fmt.Errorf("record #%d: timestamp %s, produced with %s", i, g.ts.Format(time.RFC3339Nano), w.ts.Format(time.RFC3339Nano))
		}
		if wantCodec >= 0 && g.codec != wantCodec {
			return fmt.Errorf("record #%d: batch compression %d, produced with %d", i, g.codec, wantCodec)
		}
		if wantProducerID && g.producer < 0 {
			return fmt.Errorf("record #%d: batch has no producer id (%d) though produced idempotently", i, g.producer)
		}
	}
	// Per key, offsets grow in produce order (same key, same partition).
	last := map[string]int64{}
	lastPart := map[string]int32{}
	for i, w := range wants {
		if p, ok := lastPart[w.key]; ok {
			if p != w.partition {
				return fmt.Errorf("key %q went to partitions %d and %d", w.key, p, w.partition)
			}
			if w.offset <= last[w.key] {
				return fmt.Errorf("record #%d (key %q) at offset %d, not after %d", i, w.key, w.offset, last[w.key])
			}
		}
		last[w.key], lastPart[w.key] = w.offset, w.partition
	}
	return nil
}

// partitionsSpan returns, per partition, [min offset, max offset + 1) of the wants.
func partitionsSpan(wants []*want) map[int32][2]int64 {
	out := map[int32][2]int64{}
	for _, w := range wants {
		s, ok := out[w.partition]
		if !ok {
			s = [2]int64{w.offset, w.offset + 1}
		}
		if w.offset < s[0] {
			s[0] = w.offset
		}
		if w.offset+1 > s[1] {
			s[1] = w.offset + 1
		}
		out[w.partition] = s
	}
	return out
}

// ---- group scenario bookkeeping shared by both clients ----

// members tracks the partitions each member owns and what each consumed.
type consumedBy struct {
	member    string
	partition int32
	offset    int64
	key       string
}

func sortedParts(m map[int32]bool) []int32 {
	var out []int32
	for p, ok := range m {
		if ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// splitOK says whether the assignments are a split of 0..n-1 among all members,
// each holding at least one partition.
func splitOK(n int32, assigned map[string]map[int32]bool) error {
	owner := map[int32]string{}
	for m, ps := range assigned {
		if len(sortedParts(ps)) == 0 {
			return fmt.Errorf("member %s owns nothing (assignments %v)", m, describeAssign(assigned))
		}
		for _, p := range sortedParts(ps) {
			if o, dup := owner[p]; dup {
				return fmt.Errorf("partition %d owned by %s and %s", p, o, m)
			}
			owner[p] = m
		}
	}
	if int32(len(owner)) != n {
		return fmt.Errorf("%d of %d partitions owned (assignments %v)", len(owner), n, describeAssign(assigned))
	}
	return nil
}

func describeAssign(assigned map[string]map[int32]bool) string {
	var parts []string
	for m, ps := range assigned {
		parts = append(parts, fmt.Sprintf("%s:%v", m, sortedParts(ps)))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// checkConsumedSplit: every (partition, offset) in [from, to) of each partition
// consumed exactly once, each by the member owning the partition.
func checkConsumedSplit(consumed []consumedBy, owners map[int32]string, nParts int32, from, to int64) error {
	seen := map[[2]int64]string{}
	for _, c := range consumed {
		k := [2]int64{int64(c.partition), c.offset}
		if prev, dup := seen[k]; dup {
			return fmt.Errorf("%d/%d consumed twice (by %s and %s)", c.partition, c.offset, prev, c.member)
		}
		seen[k] = c.member
		if c.offset < from || c.offset >= to {
			return fmt.Errorf("%s consumed %d/%d, outside the expected [%d,%d)", c.member, c.partition, c.offset, from, to)
		}
		if owners != nil && owners[c.partition] != c.member {
			return fmt.Errorf("%s consumed %d/%d, but %s owns partition %d", c.member, c.partition, c.offset, owners[c.partition], c.partition)
		}
	}
	if int64(len(seen)) != int64(nParts)*(to-from) {
		return fmt.Errorf("consumed %d distinct records, want %d", len(seen), int64(nParts)*(to-from))
	}
	return nil
}
