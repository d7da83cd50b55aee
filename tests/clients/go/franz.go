package main

// franz-go (github.com/twmb/franz-go/pkg/kgo) and its admin client kadm.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func franzClient(e *env, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(e.bootstrap),
		kgo.ClientID("sluice-go-test-" + e.name),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryTimeout(20 * time.Second),
		kgo.WithLogger(kgo.BasicLogger(stderrWriter{e}, kgo.LogLevelWarn, nil)),
	}
	return kgo.NewClient(append(base, opts...)...)
}

type stderrWriter struct{ e *env }

func (w stderrWriter) Write(p []byte) (int, error) {
	logf(w.e, "franz-go: %s", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// franzCreateTopic creates a topic and waits until its metadata shows every
// partition with a leader.
func franzCreateTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return fmt.Errorf("CreateTopic %s: %w", topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("CreateTopic %s: %w (%s)", topic, resp.Err, resp.ErrMessage)
	}
	return franzWaitPartitions(ctx, adm, topic, partitions)
}

func franzWaitPartitions(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	return waitFor(ctx, "topic "+topic+" metadata", func() error {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		d, ok := td[topic]
		if !ok {
			return fmt.Errorf("not listed")
		}
		if d.Err != nil {
			return d.Err
		}
		if int32(len(d.Partitions)) != partitions {
			return fmt.Errorf("%d partitions, want %d", len(d.Partitions), partitions)
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Errorf("partition %d: leader %d, err %v", p.Partition, p.Leader, p.Err)
			}
		}
		return nil
	})
}

func franzCodec(codec string) kgo.CompressionCodec {
	switch codec {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// franzReadBack consumes [from, to) of each partition with a direct (group-less) consumer.
func franzReadBack(ctx context.Context, e *env, topic string, spans map[int32][2]int64) ([]got, error) {
	offsets := map[int32]kgo.Offset{}
	for p, s := range spans {
		offsets[p] = kgo.NewOffset().At(s[0])
	}
	cl, err := franzClient(e, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []got
	next := map[int32]int64{}
	for p, s := range spans {
		next[p] = s[0]
	}
	done := func() bool {
		for p, s := range spans {
			if next[p] < s[1] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("read back: positions %v, want ends %v: %w", next, spans, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			logf(e, "fetch error %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			if !kerr.IsRetriable(fe.Err) && !errors.Is(fe.Err, context.DeadlineExceeded) {
				return out, fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			s, ok := spans[r.Partition]
			if !ok || r.Offset < s[0] || r.Offset >= s[1] {
				return
			}
			out = append(out, franzGot(r))
			if r.Offset+1 > next[r.Partition] {
				next[r.Partition] = r.Offset + 1
			}
		})
	}
	return out, nil
}

// franzReadBackReset consumes partition p from offset `from` (reset to the start if out
// of range) until offset `to`.
func franzReadBackReset(ctx context.Context, e *env, topic string, p int32, from, to int64) ([]got, error) {
	cl, err := franzClient(e,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []got
	for len(out) == 0 || out[len(out)-1].offset < to-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("consuming %s/%d from %d: got %d records: %w", topic, p, from, len(out), ctx.Err())
		}
		for _, fe := range fs.Errors() {
			logf(e, "fetch error %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, franzGot(r)) })
	}
	return out, nil
}

func franzGot(r *kgo.Record) got {
	g := got{key: string(r.Key), value: r.Value, null: r.Value == nil, partition: r.Partition, offset: r.Offset,
		codec: int(r.Attrs.CompressionType()), producer: r.ProducerID, ts: r.Timestamp}
	for _, h := range r.Headers {
		g.headers = append(g.headers, header{h.Key, string(h.Value)})
	}
	return g
}

// franzProduce: the idempotent producer (franz-go's default) with one codec; read back.
func franzProduce(codec string) func(ctx context.Context, e *env) error {
	return func(ctx context.Context, e *env) error {
		topic := unique("go-franz-produce-" + codec)
		cl, err := franzClient(e, kgo.ProducerBatchCompression(franzCodec(codec)), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		if err := franzCreateTopic(ctx, adm, topic, 3, nil); err != nil {
			return err
		}
		wants := testRecords(60, codec)
		var recs []*kgo.Record
		for _, w := range wants {
			r := &kgo.Record{Topic: topic, Key: []byte(w.key), Value: w.value, Timestamp: w.ts}
			for _, h := range w.headers {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.key, Value: []byte(h.value)})
			}
			recs = append(recs, r)
		}
		// Two rounds: the idempotent producer's sequence numbers continue across batches.
		for _, half := range [][]*kgo.Record{recs[:30], recs[30:]} {
			if err := cl.ProduceSync(ctx, half...).FirstErr(); err != nil {
				return fmt.Errorf("ProduceSync: %w", err)
			}
		}
		for i, r := range recs {
			wants[i].partition, wants[i].offset = r.Partition, r.Offset
		}
		gots, err := franzReadBack(ctx, e, topic, partitionsSpan(wants))
		if err != nil {
			return err
		}
		if err := checkReadBack(wants, gots, codecIDs[codec], true); err != nil {
			return err
		}
		// Cleanup (best effort; the topic name is unique anyway).
		_, _ = adm.DeleteTopics(ctx, topic)
		return nil
	}
}

// franzProduceTo writes n records to each partition (keys p<partition>-<i>), waiting for acks.
func franzProduceTo(ctx context.Context, cl *kgo.Client, topic string, partitions int32, n int, tag string) error {
	var recs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("p%d-%s-%d", p, tag, i)),
				Value: []byte(fmt.Sprintf("%s value %d", tag, i))})
		}
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// franzMember is one consumer-group member and its bookkeeping.
type franzMember struct {
	name string
	cl   *kgo.Client
	mu   *sync.Mutex
	own  map[int32]bool
	// polling
	stop   context.CancelFunc
	done   chan struct{}
	errs   []error
	record func(consumedBy)
}

func startFranzMember(ctx context.Context, e *env, name, group, topic string, mu *sync.Mutex, assigned map[string]map[int32]bool,
	record func(consumedBy)) (*franzMember, error) {
	m := &franzMember{name: name, mu: mu, own: map[int32]bool{}, done: make(chan struct{}), record: record}
	mu.Lock()
	assigned[name] = m.own
	mu.Unlock()
	cl, err := franzClient(e,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(20*time.Second),
		kgo.FetchMaxWait(300*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps[topic] {
				m.own[p] = true
			}
			logf(e, "%s assigned %v -> owns %v", name, ps[topic], sortedParts(m.own))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps[topic] {
				delete(m.own, p)
			}
			logf(e, "%s revoked %v -> owns %v", name, ps[topic], sortedParts(m.own))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps[topic] {
				delete(m.own, p)
			}
			logf(e, "%s LOST %v -> owns %v", name, ps[topic], sortedParts(m.own))
		}),
	)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	pctx, cancel := context.WithCancel(ctx)
	m.stop = cancel
	go func() {
		defer close(m.done)
		for pctx.Err() == nil {
			fs := cl.PollFetches(pctx)
			for _, fe := range fs.Errors() {
				if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
					continue
				}
				logf(e, "%s: fetch error %s/%d: %v", name, fe.Topic, fe.Partition, fe.Err)
				mu.Lock()
				m.errs = append(m.errs, fmt.Errorf("%s/%d: %w", fe.Topic, fe.Partition, fe.Err))
				mu.Unlock()
			}
			fs.EachRecord(func(r *kgo.Record) {
				record(consumedBy{member: name, partition: r.Partition, offset: r.Offset, key: string(r.Key)})
			})
		}
	}()
	return m, nil
}

// stopPolling ends the poll loop (the member stays in the group).
func (m *franzMember) stopPolling() {
	m.stop()
	<-m.done
}

// franzGroup: franz-go's default balancer (cooperative-sticky). Two members split 4
// partitions and commit; after they leave, a new member resumes at the commits.
func franzGroup(ctx context.Context, e *env) error {
	const parts = 4
	topic := unique("go-franz-group")
	group := unique("go-franz-group")
	cl, err := franzClient(e, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := franzCreateTopic(ctx, adm, topic, parts, nil); err != nil {
		return err
	}
	var mu sync.Mutex
	assigned := map[string]map[int32]bool{}
	var consumed []consumedBy
	record := func(c consumedBy) {
		mu.Lock()
		consumed = append(consumed, c)
		mu.Unlock()
	}
	a, err := startFranzMember(ctx, e, "A", group, topic, &mu, assigned, record)
	if err != nil {
		return err
	}
	defer a.cl.Close()
	// A alone first: it gets every partition.
	if err := waitFor(ctx, "A owning all partitions", func() error {
		mu.Lock()
		defer mu.Unlock()
		return splitOK(parts, assigned)
	}); err != nil {
		return err
	}
	b, err := startFranzMember(ctx, e, "B", group, topic, &mu, assigned, record)
	if err != nil {
		return err
	}
	defer b.cl.Close()
	if err := waitFor(ctx, "A and B splitting the partitions", func() error {
		mu.Lock()
		defer mu.Unlock()
		return splitOK(parts, assigned)
	}); err != nil {
		return err
	}
	mu.Lock()
	owners := map[int32]string{}
	for m, ps := range assigned {
		for _, p := range sortedParts(ps) {
			owners[p] = m
		}
	}
	logf(e, "split: %s", describeAssign(assigned))
	mu.Unlock()
	if err := franzProduceTo(ctx, cl, topic, parts, 10, "first"); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	if err := waitFor(ctx, "A and B consuming 40 records", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(consumed) < parts*10 {
			return fmt.Errorf("%d consumed", len(consumed))
		}
		return nil
	}); err != nil {
		return err
	}
	a.stopPolling()
	b.stopPolling()
	mu.Lock()
	err = checkConsumedSplit(consumed, owners, parts, 0, 10)
	if err == nil {
		err = splitOK(parts, assigned) // the split did not move while consuming
	}
	errs := append(append([]error{}, a.errs...), b.errs...)
	mu.Unlock()
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("fetch errors: %v", errs)
	}
	for _, m := range []*franzMember{a, b} {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("%s commit: %w", m.name, err)
		}
	}
	if err := franzCheckCommitted(ctx, adm, group, topic, parts, 10); err != nil {
		return err
	}
	// Both leave (Close sends LeaveGroup).
	a.cl.Close()
	b.cl.Close()
	if err := waitFor(ctx, "group empty after both left", func() error {
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if g := dg[group]; g.State != "Empty" || len(g.Members) != 0 {
			return fmt.Errorf("state %q with %d members", g.State, len(g.Members))
		}
		return nil
	}); err != nil {
		return err
	}

	if err := franzProduceTo(ctx, cl, topic, parts, 5, "second"); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	mu.Lock()
	consumed = nil
	mu.Unlock()
	c, err := startFranzMember(ctx, e, "C", group, topic, &mu, assigned, record)
	if err != nil {
		return err
	}
	defer c.cl.Close()
	mu.Lock()
	delete(assigned, "A")
	delete(assigned, "B")
	mu.Unlock()
	if err := waitFor(ctx, "C consuming the 20 new records", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(consumed) < parts*5 {
			return fmt.Errorf("%d consumed", len(consumed))
		}
		return nil
	}); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // anything extra (re-consumed old records) shows up now
	c.stopPolling()
	mu.Lock()
	err = checkConsumedSplit(consumed, nil, parts, 10, 15)
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("new member after the commits: %w", err)
	}
	if err := c.cl.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("C commit: %w", err)
	}
	if err := franzCheckCommitted(ctx, adm, group, topic, parts, 15); err != nil {
		return err
	}
	c.cl.Close()
	_, _ = adm.DeleteTopics(ctx, topic)
	return nil
}

func franzCheckCommitted(ctx context.Context, adm *kadm.Client, group, topic string, parts int32, want int64) error {
	or, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("FetchOffsets: %w", err)
	}
	if err := or.Error(); err != nil {
		return fmt.Errorf("FetchOffsets: %w", err)
	}
	for p := int32(0); p < parts; p++ {
		o, ok := or.Lookup(topic, p)
		if !ok || o.At != want {
			return fmt.Errorf("committed offset of %s/%d: %d (found %v), want %d", topic, p, o.At, ok, want)
		}
	}
	return nil
}

func strp(s string) *string { return &s }

func configValue(rc kadm.ResourceConfig, key string) (string, kmsg.ConfigSource, bool) {
	for _, c := range rc.Configs {
		if c.Key == key {
			if c.Value == nil {
				return "", c.Source, true
			}
			return *c.Value, c.Source, true
		}
	}
	return "", 0, false
}

// franzAdmin: kadm against topics, configs, offsets and groups.
func franzAdmin(ctx context.Context, e *env) error {
	topic := unique("go-franz-admin")
	group := unique("go-franz-admin")
	cl, err := franzClient(e, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Brokers.
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) == 0 {
		return fmt.Errorf("ListBrokers: %v, %v", brokers, err)
	}
	// Topics: create, list, describe, add partitions.
	if err := franzCreateTopic(ctx, adm, topic, 2, map[string]*string{"retention.ms": strp("3600000"), "cleanup.policy": strp("delete")}); err != nil {
		return err
	}
	dup, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil && !errors.Is(dup.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating %s again: %v, want TOPIC_ALREADY_EXISTS", topic, dup.Err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("ListTopics: %w", err)
	}
	if d, ok := td[topic]; !ok || len(d.Partitions) != 2 || d.IsInternal {
		return fmt.Errorf("ListTopics: %s missing or wrong: %+v", topic, d)
	}
	if d := td[topic]; d.ID == (kadm.TopicID{}) {
		return fmt.Errorf("ListTopics: %s has the zero topic id", topic)
	}
	for _, p := range td[topic].Partitions {
		if len(p.Replicas) != 1 || len(p.ISR) != 1 || p.Replicas[0] != p.Leader || p.ISR[0] != p.Leader {
			return fmt.Errorf("partition %d: leader %d replicas %v isr %v, want [leader] [leader]", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}
	if _, ok := td["__consumer_offsets"]; ok {
		return fmt.Errorf("ListTopics (non-internal) lists __consumer_offsets")
	}
	if r, err := adm.CreatePartitions(ctx, 2, topic); err != nil || r[topic].Err != nil {
		return fmt.Errorf("CreatePartitions +2: %v %v", err, r[topic].Err)
	}
	if err := franzWaitPartitions(ctx, adm, topic, 4); err != nil {
		return err
	}
	if r, err := adm.UpdatePartitions(ctx, 3, topic); err == nil && r[topic].Err == nil {
		return fmt.Errorf("UpdatePartitions to fewer (3 < 4) succeeded")
	} else if err == nil && !errors.Is(r[topic].Err, kerr.InvalidPartitions) {
		return fmt.Errorf("UpdatePartitions to fewer: %v, want INVALID_PARTITIONS", r[topic].Err)
	}

	// Configs: describe, incremental alter, non-incremental alter.
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("DescribeTopicConfigs: %w", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return fmt.Errorf("DescribeTopicConfigs %s: %v %v", topic, err, rc.Err)
	}
	if v, src, ok := configValue(rc, "retention.ms"); !ok || v != "3600000" || src != kmsg.ConfigSourceDynamicTopicConfig {
		return fmt.Errorf("retention.ms = %q (source %v, found %v), want 3600000 from DYNAMIC_TOPIC_CONFIG", v, src, ok)
	}
	if v, _, ok := configValue(rc, "max.message.bytes"); !ok || v == "" {
		return fmt.Errorf("max.message.bytes not described (found %v, %q)", ok, v)
	}
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("7200000")},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("500000")},
		{Op: kadm.DeleteConfig, Name: "cleanup.policy"},
	}, topic)
	if err != nil {
		return fmt.Errorf("AlterTopicConfigs: %w", err)
	}
	for _, r := range ar {
		if r.Err != nil {
			return fmt.Errorf("AlterTopicConfigs %s: %v (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
	if err := waitFor(ctx, "incremental alter visible", func() error {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return err
		}
		rc, _ := rcs.On(topic, nil)
		if v, _, _ := configValue(rc, "retention.ms"); v != "7200000" {
			return fmt.Errorf("retention.ms %q", v)
		}
		if v, _, _ := configValue(rc, "max.message.bytes"); v != "500000" {
			return fmt.Errorf("max.message.bytes %q", v)
		}
		if v, src, _ := configValue(rc, "cleanup.policy"); v != "delete" || src == kmsg.ConfigSourceDynamicTopicConfig {
			return fmt.Errorf("cleanup.policy %q source %v after delete (want the default)", v, src)
		}
		return nil
	}); err != nil {
		return err
	}
	bad, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")}}, topic)
	if err == nil && len(bad) == 1 && bad[0].Err == nil {
		return fmt.Errorf("AlterTopicConfigs of an unknown key succeeded")
	}
	// Non-incremental AlterConfigs: replaces the whole set.
	ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: strp("600000")}}, topic)
	if err != nil || len(ar) != 1 || ar[0].Err != nil {
		return fmt.Errorf("AlterTopicConfigsState: %v %+v", err, ar)
	}
	if err := waitFor(ctx, "non-incremental alter visible", func() error {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return err
		}
		rc, _ := rcs.On(topic, nil)
		if v, _, _ := configValue(rc, "segment.ms"); v != "600000" {
			return fmt.Errorf("segment.ms %q", v)
		}
		if v, src, _ := configValue(rc, "retention.ms"); v == "7200000" || src == kmsg.ConfigSourceDynamicTopicConfig {
			return fmt.Errorf("retention.ms %q (source %v) survived a non-incremental alter", v, src)
		}
		return nil
	}); err != nil {
		return err
	}
	bcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(bcs) == 0 || bcs[0].Err != nil {
		return fmt.Errorf("DescribeBrokerConfigs: %v %+v", err, bcs)
	}

	// Offsets: produce 10 records to partition 0 with known timestamps, list, delete records.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	// The largest timestamp sits at offset 7.
	recs[7].Timestamp = base.Add(time.Minute)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	checkList := func(what string, lo kadm.ListedOffsets, err error, p int32, want int64) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		o, ok := lo.Lookup(topic, p)
		if !ok || o.Err != nil || o.Offset != want {
			return fmt.Errorf("%s %s/%d: offset %d (found %v, err %v), want %d", what, topic, p, o.Offset, ok, o.Err, want)
		}
		return nil
	}
	lo, err := adm.ListStartOffsets(ctx, topic)
	if err := checkList("ListStartOffsets", lo, err, 0, 0); err != nil {
		return err
	}
	lo, err = adm.ListEndOffsets(ctx, topic)
	if err := checkList("ListEndOffsets", lo, err, 0, 10); err != nil {
		return err
	}
	if err := checkList("ListEndOffsets (empty partition)", lo, err, 3, 0); err != nil {
		return err
	}
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(2500*time.Millisecond).UnixMilli(), topic)
	if err := checkList("ListOffsetsAfterMilli", lo, err, 0, 3); err != nil {
		return err
	}
	lo, err = adm.ListOffsetsAfterMilli(ctx, time.Now().Add(time.Hour).UnixMilli(), topic)
	if err := checkList("ListOffsetsAfterMilli (after every record)", lo, err, 0, 10); err != nil {
		return err
	}
	lo, err = adm.ListMaxTimestampOffsets(ctx, topic)
	if err := checkList("ListMaxTimestampOffsets", lo, err, 0, 7); err != nil {
		return err
	}
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
	dr, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		return fmt.Errorf("DeleteRecords: %w", err)
	}
	if d, ok := dr.Lookup(topic, 0); !ok || d.Err != nil || d.LowWatermark != 4 {
		return fmt.Errorf("DeleteRecords %s/0 to 4: %+v (found %v)", topic, d, ok)
	}
	lo, err = adm.ListStartOffsets(ctx, topic)
	if err := checkList("ListStartOffsets after DeleteRecords", lo, err, 0, 4); err != nil {
		return err
	}
	var past kadm.Offsets
	past.Add(kadm.Offset{Topic: topic, Partition: 0, At: 11})
	if dr, err := adm.DeleteRecords(ctx, past); err == nil {
		if d, _ := dr.Lookup(topic, 0); !errors.Is(d.Err, kerr.OffsetOutOfRange) {
			return fmt.Errorf("DeleteRecords past the end (11 > 10): %v, want OFFSET_OUT_OF_RANGE", d.Err)
		}
	}
	// A consumer asking for a deleted offset is told OFFSET_OUT_OF_RANGE and resets to the start.
	gots, err := franzReadBackReset(ctx, e, topic, 0, 1, 10)
	if err != nil {
		return err
	}
	if len(gots) != 6 || gots[0].offset != 4 {
		return fmt.Errorf("consuming %s/0 from deleted offset 1: got %d records from %v, want 6 from offset 4", topic, len(gots), gots)
	}

	// Group offsets without members: commit, fetch, describe, delete.
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 6, LeaderEpoch: -1, Metadata: "meta-0"})
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 0, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		return fmt.Errorf("CommitAllOffsets: %w", err)
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil || fo.Error() != nil {
		return fmt.Errorf("FetchOffsets: %v %v", err, fo.Error())
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != 6 || o.Metadata != "meta-0" {
		return fmt.Errorf("FetchOffsets %s/0: %+v (found %v), want 6 meta-0", topic, o, ok)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("ListGroups: %w", err)
	}
	if _, ok := lg[group]; !ok {
		return fmt.Errorf("ListGroups: %s not listed (%v)", group, lg.Groups())
	}
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("DescribeGroups: %w", err)
	}
	if g := dg[group]; g.Err != nil || g.State != "Empty" || len(g.Members) != 0 {
		return fmt.Errorf("DescribeGroups %s: state %q, %d members, err %v; want Empty", group, g.State, len(g.Members), g.Err)
	}
	dor, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {1: {}}})
	if err != nil {
		return fmt.Errorf("DeleteOffsets: %w", err)
	}
	if err := dor.Error(); err != nil {
		return fmt.Errorf("DeleteOffsets: %w", err)
	}
	fo, err = adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("FetchOffsets: %w", err)
	}
	if o, ok := fo.Lookup(topic, 1); ok && o.At >= 0 {
		return fmt.Errorf("offset of %s/1 still %d after DeleteOffsets", topic, o.At)
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != 6 {
		return fmt.Errorf("offset of %s/0 gone after deleting partition 1's: %+v", topic, o)
	}

	// An active group: one member, described with its assignment.
	active := unique("go-franz-admin-active")
	var mu sync.Mutex
	assigned := map[string]map[int32]bool{}
	m, err := startFranzMember(ctx, e, "M", active, topic, &mu, assigned, func(consumedBy) {})
	if err != nil {
		return err
	}
	defer m.cl.Close()
	if err := waitFor(ctx, "active member owning all partitions", func() error {
		mu.Lock()
		defer mu.Unlock()
		return splitOK(4, assigned)
	}); err != nil {
		return err
	}
	if err := waitFor(ctx, "active group described Stable", func() error {
		dg, err := adm.DescribeGroups(ctx, active)
		if err != nil {
			return err
		}
		g := dg[active]
		if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "cooperative-sticky" || len(g.Members) != 1 {
			return fmt.Errorf("state %q protocol %q/%q members %d err %v", g.State, g.ProtocolType, g.Protocol, len(g.Members), g.Err)
		}
		ca, ok := g.Members[0].Assigned.AsConsumer()
		if !ok {
			return fmt.Errorf("member assignment is not a consumer assignment")
		}
		n := 0
		for _, t := range ca.Topics {
			if t.Topic == topic {
				n += len(t.Partitions)
			}
		}
		if n != 4 {
			return fmt.Errorf("described assignment has %d partitions of %s, want 4", n, topic)
		}
		return nil
	}); err != nil {
		return err
	}
	lg, err = adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("ListGroups: %w", err)
	}
	if g, ok := lg[active]; !ok || g.ProtocolType != "consumer" || g.State != "Stable" {
		return fmt.Errorf("ListGroups: %s %+v (found %v), want consumer/Stable", active, g, ok)
	}
	lg, err = adm.ListGroups(ctx, "Empty")
	if err != nil {
		return fmt.Errorf("ListGroups(Empty): %w", err)
	}
	if _, ok := lg[active]; ok {
		return fmt.Errorf("ListGroups(Empty) lists the Stable group %s", active)
	}
	if _, ok := lg[group]; !ok {
		return fmt.Errorf("ListGroups(Empty) does not list the Empty group %s", group)
	}
	lg, err = adm.ListGroupsByType(ctx, []string{"classic"})
	if err != nil {
		return fmt.Errorf("ListGroupsByType(classic): %w", err)
	}
	if g, ok := lg[active]; !ok || g.GroupType != "classic" {
		return fmt.Errorf("ListGroupsByType(classic): %s %+v (found %v)", active, g, ok)
	}
	lg, err = adm.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil {
		return fmt.Errorf("ListGroupsByType(consumer): %w", err)
	}
	if _, ok := lg[active]; ok {
		return fmt.Errorf("ListGroupsByType(consumer) lists the classic group %s", active)
	}
	// Committing offsets from outside into a group with members is refused.
	var aos kadm.Offsets
	aos.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, active, aos)
	if err == nil {
		err = cr.Error()
	}
	if !errors.Is(err, kerr.UnknownMemberID) {
		return fmt.Errorf("admin CommitOffsets into the active group %s: %v, want UNKNOWN_MEMBER_ID", active, err)
	}
	if dgr, err := adm.DeleteGroups(ctx, active); err == nil && !errors.Is(dgr[active].Err, kerr.NonEmptyGroup) {
		return fmt.Errorf("DeleteGroups of the active group: %v, want NON_EMPTY_GROUP", dgr[active].Err)
	}
	dso, err := adm.DeleteOffsets(ctx, active, kadm.TopicsSet{topic: {0: {}}})
	if err == nil {
		err = dso.Error()
	}
	if !errors.Is(err, kerr.GroupSubscribedToTopic) {
		return fmt.Errorf("DeleteOffsets of a topic the active group consumes: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	lag, err := adm.Lag(ctx, active)
	if err != nil {
		return fmt.Errorf("Lag: %w", err)
	}
	if l := lag[active]; l.Error() != nil {
		return fmt.Errorf("Lag %s: %v", active, l.Error())
	}
	m.stopPolling()
	m.cl.Close()

	// Delete the groups, then the topic.
	dgr, err := adm.DeleteGroups(ctx, group, active)
	if err != nil {
		return fmt.Errorf("DeleteGroups: %w", err)
	}
	for _, g := range []string{group, active} {
		if dgr[g].Err != nil {
			return fmt.Errorf("DeleteGroups %s: %w", g, dgr[g].Err)
		}
	}
	lg, err = adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("ListGroups: %w", err)
	}
	if _, ok := lg[group]; ok {
		return fmt.Errorf("%s still listed after DeleteGroups", group)
	}
	dtr, err := adm.DeleteTopics(ctx, topic)
	if err != nil || dtr[topic].Err != nil {
		return fmt.Errorf("DeleteTopics: %v %v", err, dtr[topic].Err)
	}
	if err := waitFor(ctx, "topic gone after DeleteTopics", func() error {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		if _, ok := td[topic]; ok {
			return fmt.Errorf("still listed")
		}
		return nil
	}); err != nil {
		return err
	}
	return nil
}
