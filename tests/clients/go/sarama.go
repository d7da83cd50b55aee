package main

// Sarama (github.com/IBM/sarama): sync producer, partition consumer, consumer
// group, ClusterAdmin.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

func init() {
	// Sarama logs to a package-level logger; SARAMA_LOG=1 shows it (on stderr).
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	} else {
		sarama.Logger = log.New(io.Discard, "", 0)
	}
}

func saramaConfig(e *env) *sarama.Config {
	cfg := sarama.NewConfig()
	// The protocol versions Sarama picks (capped by the broker's ApiVersions).
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "sluice-go-test-" + e.name
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Net.ReadTimeout = 20 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.Retry.Max = 20
	cfg.Admin.Timeout = 20 * time.Second
	cfg.Admin.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

func saramaAdminClient(e *env) (sarama.ClusterAdmin, error) {
	return sarama.NewClusterAdmin([]string{e.bootstrap}, saramaConfig(e))
}

func saramaCreateTopic(ctx context.Context, adm sarama.ClusterAdmin, topic string, partitions int32, configs map[string]*string) error {
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false); err != nil {
		return fmt.Errorf("CreateTopic %s: %w", topic, err)
	}
	return saramaWaitPartitions(ctx, adm, topic, partitions)
}

func saramaWaitPartitions(ctx context.Context, adm sarama.ClusterAdmin, topic string, partitions int32) error {
	return waitFor(ctx, "topic "+topic+" metadata", func() error {
		md, err := adm.DescribeTopics([]string{topic})
		if err != nil {
			return err
		}
		if len(md) != 1 || md[0].Err != sarama.ErrNoError {
			return fmt.Errorf("DescribeTopics: %+v", md)
		}
		if int32(len(md[0].Partitions)) != partitions {
			return fmt.Errorf("%d partitions, want %d", len(md[0].Partitions), partitions)
		}
		for _, p := range md[0].Partitions {
			if p.Err != sarama.ErrNoError || p.Leader < 0 {
				return fmt.Errorf("partition %d: leader %d, err %v", p.ID, p.Leader, p.Err)
			}
		}
		return nil
	})
}

func saramaCodec(codec string) sarama.CompressionCodec {
	switch codec {
	case "gzip":
		return sarama.CompressionGZIP
	case "snappy":
		return sarama.CompressionSnappy
	case "lz4":
		return sarama.CompressionLZ4
	case "zstd":
		return sarama.CompressionZSTD
	}
	return sarama.CompressionNone
}

// saramaReadBack consumes [from, to) of each partition with Sarama's partition consumer.
func saramaReadBack(ctx context.Context, e *env, topic string, spans map[int32][2]int64, version sarama.KafkaVersion) ([]got, error) {
	cfg := saramaConfig(e)
	cfg.Version = version
	c, err := sarama.NewConsumer([]string{e.bootstrap}, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []got
	for p, s := range spans {
		pc, err := c.ConsumePartition(topic, p, s[0])
		if err != nil {
			return out, fmt.Errorf("ConsumePartition %s/%d at %d: %w", topic, p, s[0], err)
		}
		next := s[0]
		for next < s[1] {
			select {
			case m := <-pc.Messages():
				if m.Offset < s[0] || m.Offset >= s[1] {
					continue
				}
				g := got{key: string(m.Key), value: m.Value, null: m.Value == nil, partition: m.Partition, offset: m.Offset, codec: -1, ts: m.Timestamp}
				for _, h := range m.Headers {
					g.headers = append(g.headers, header{string(h.Key), string(h.Value)})
				}
				out = append(out, g)
				next = m.Offset + 1
			case ce := <-pc.Errors():
				pc.Close()
				return out, fmt.Errorf("consume %s/%d: %w", topic, p, ce.Err)
			case <-ctx.Done():
				pc.Close()
				return out, fmt.Errorf("read back %s/%d: at %d, want %d: %w", topic, p, next, s[1], ctx.Err())
			}
		}
		pc.Close()
	}
	return out, nil
}

// saramaProduce: the sync producer with one codec (optionally idempotent); read back
// with Sarama, and with franz-go, which shows each batch's codec and producer id.
func saramaProduce(codec string, idempotent bool) func(ctx context.Context, e *env) error {
	return saramaProduceAt(codec, idempotent, sarama.KafkaVersion{})
}

// saramaProduceAt: saramaProduce with the producer's and consumer's cfg.Version set to
// `version` (the zero value: saramaConfig's V4_0_0_0).
func saramaProduceAt(codec string, idempotent bool, version sarama.KafkaVersion) func(ctx context.Context, e *env) error {
	return func(ctx context.Context, e *env) error {
		topic := unique("go-sarama-produce-" + codec)
		adm, err := saramaAdminClient(e)
		if err != nil {
			return err
		}
		defer adm.Close()
		if err := saramaCreateTopic(ctx, adm, topic, 3, nil); err != nil {
			return err
		}
		cfg := saramaConfig(e)
		if version != (sarama.KafkaVersion{}) {
			cfg.Version = version
		}
		cfg.Producer.Compression = saramaCodec(codec)
		if idempotent {
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			cfg.Producer.Retry.Max = 5
		}
		p, err := sarama.NewSyncProducer([]string{e.bootstrap}, cfg)
		if err != nil {
			return fmt.Errorf("NewSyncProducer: %w", err)
		}
		defer p.Close()
		wants := testRecords(60, codec)
		var msgs []*sarama.ProducerMessage
		for _, w := range wants {
			m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(w.key), Timestamp: w.ts}
			if w.value != nil {
				m.Value = sarama.ByteEncoder(w.value)
			}
			for _, h := range w.headers {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.key), Value: []byte(h.value)})
			}
			msgs = append(msgs, m)
		}
		for _, half := range [][]*sarama.ProducerMessage{msgs[:30], msgs[30:]} {
			if err := p.SendMessages(half); err != nil {
				return fmt.Errorf("SendMessages: %w", err)
			}
		}
		for i, m := range msgs {
			wants[i].partition, wants[i].offset = m.Partition, m.Offset
		}
		spans := partitionsSpan(wants)
		gots, err := saramaReadBack(ctx, e, topic, spans, cfg.Version)
		if err != nil {
			return err
		}
		if err := checkReadBack(wants, gots, -1, false); err != nil {
			return fmt.Errorf("sarama read back: %w", err)
		}
		fgots, err := franzReadBack(ctx, e, topic, spans)
		if err != nil {
			return err
		}
		if err := checkReadBack(wants, fgots, codecIDs[codec], idempotent); err != nil {
			return fmt.Errorf("franz-go read back: %w", err)
		}
		_ = adm.DeleteTopic(topic)
		return nil
	}
}

// saramaMember is one consumer-group member; it is its own ConsumerGroupHandler.
type saramaMember struct {
	name   string
	group  sarama.ConsumerGroup
	mu     *sync.Mutex
	own    map[int32]bool
	gen    int32
	sess   sarama.ConsumerGroupSession
	topic  string
	record func(consumedBy)
	errs   []error
	cancel context.CancelFunc
	done   chan struct{}
	e      *env
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.own {
		delete(m.own, p)
	}
	for _, p := range s.Claims()[m.topic] {
		m.own[p] = true
	}
	m.gen = s.GenerationID()
	m.sess = s
	logf(m.e, "%s generation %d owns %v", m.name, m.gen, sortedParts(m.own))
	return nil
}

func (m *saramaMember) Cleanup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.own {
		delete(m.own, p)
	}
	m.sess = nil
	logf(m.e, "%s generation %d cleaned up", m.name, s.GenerationID())
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-c.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(msg, "")
			m.record(consumedBy{member: m.name, partition: msg.Partition, offset: msg.Offset, key: string(msg.Key)})
		case <-s.Context().Done():
			return nil
		}
	}
}

// commit commits the marked offsets of the current session.
func (m *saramaMember) commit() error {
	m.mu.Lock()
	s := m.sess
	m.mu.Unlock()
	if s == nil {
		return fmt.Errorf("%s has no session to commit in", m.name)
	}
	s.Commit()
	return nil
}

func (m *saramaMember) close() {
	m.cancel()
	_ = m.group.Close()
	<-m.done
}

func startSaramaMember(ctx context.Context, e *env, strategy, name, group, topic string, mu *sync.Mutex,
	assigned map[string]map[int32]bool, record func(consumedBy)) (*saramaMember, error) {
	cfg := saramaConfig(e)
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	if strategy == "sticky" {
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	} // else Sarama's default: range
	g, err := sarama.NewConsumerGroup([]string{e.bootstrap}, group, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewConsumerGroup %s: %w", name, err)
	}
	m := &saramaMember{name: name, group: g, mu: mu, own: map[int32]bool{}, topic: topic, record: record, done: make(chan struct{}), e: e}
	mu.Lock()
	assigned[name] = m.own
	mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	go func() {
		for err := range g.Errors() {
			logf(e, "%s: consumer group error: %v", name, err)
			mu.Lock()
			m.errs = append(m.errs, err)
			mu.Unlock()
		}
	}()
	go func() {
		defer close(m.done)
		for cctx.Err() == nil {
			if err := g.Consume(cctx, []string{topic}, m); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				logf(e, "%s: Consume: %v", name, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return m, nil
}

// saramaGroup: Sarama's consumer group with the given strategy; two members split 4
// partitions and commit; after they leave a new member resumes at the commits.
func saramaGroup(strategy string) func(ctx context.Context, e *env) error {
	return func(ctx context.Context, e *env) error {
		const parts = 4
		topic := unique("go-sarama-group-" + strategy)
		group := unique("go-sarama-group-" + strategy)
		adm, err := saramaAdminClient(e)
		if err != nil {
			return err
		}
		defer adm.Close()
		if err := saramaCreateTopic(ctx, adm, topic, parts, nil); err != nil {
			return err
		}
		pcfg := saramaConfig(e)
		pcfg.Producer.Partitioner = sarama.NewManualPartitioner
		prod, err := sarama.NewSyncProducer([]string{e.bootstrap}, pcfg)
		if err != nil {
			return err
		}
		defer prod.Close()
		produce := func(n int, tag string) error {
			var msgs []*sarama.ProducerMessage
			for p := int32(0); p < parts; p++ {
				for i := 0; i < n; i++ {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p,
						Key: sarama.StringEncoder(fmt.Sprintf("p%d-%s-%d", p, tag, i)), Value: sarama.StringEncoder(tag)})
				}
			}
			return prod.SendMessages(msgs)
		}
		var mu sync.Mutex
		assigned := map[string]map[int32]bool{}
		var consumed []consumedBy
		record := func(c consumedBy) {
			mu.Lock()
			consumed = append(consumed, c)
			mu.Unlock()
		}
		stable := func(members ...*saramaMember) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range members[1:] {
				if m.gen != members[0].gen {
					return fmt.Errorf("generations differ: %s %d, %s %d", members[0].name, members[0].gen, m.name, m.gen)
				}
			}
			return splitOK(parts, assigned)
		}
		a, err := startSaramaMember(ctx, e, strategy, "A", group, topic, &mu, assigned, record)
		if err != nil {
			return err
		}
		defer a.close()
		if err := waitFor(ctx, "A owning all partitions", func() error { return stable(a) }); err != nil {
			return err
		}
		b, err := startSaramaMember(ctx, e, strategy, "B", group, topic, &mu, assigned, record)
		if err != nil {
			return err
		}
		defer b.close()
		if err := waitFor(ctx, "A and B splitting the partitions", func() error { return stable(a, b) }); err != nil {
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
		// The coordinator agrees: two members, the strategy's protocol.
		gd, err := adm.DescribeConsumerGroups([]string{group})
		if err != nil || len(gd) != 1 {
			return fmt.Errorf("DescribeConsumerGroups: %v %v", err, gd)
		}
		if g := gd[0]; g.Err != sarama.ErrNoError || g.State != "Stable" || g.Protocol != strategy || g.ProtocolType != "consumer" || len(g.Members) != 2 {
			return fmt.Errorf("DescribeConsumerGroups %s: state %q protocol %q/%q members %d err %v; want Stable consumer/%s with 2",
				group, g.State, g.ProtocolType, g.Protocol, len(g.Members), g.Err, strategy)
		}
		if err := produce(10, "first"); err != nil {
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
		mu.Lock()
		err = checkConsumedSplit(consumed, owners, parts, 0, 10)
		if err == nil {
			err = splitOK(parts, assigned)
		}
		errs := append(append([]error{}, a.errs...), b.errs...)
		mu.Unlock()
		if err != nil {
			return err
		}
		if len(errs) > 0 {
			return fmt.Errorf("consumer group errors: %v", errs)
		}
		for _, m := range []*saramaMember{a, b} {
			if err := m.commit(); err != nil {
				return err
			}
		}
		if err := saramaCheckCommitted(ctx, adm, group, topic, parts, 10); err != nil {
			return err
		}
		mu.Lock()
		errs = append(append([]error{}, a.errs...), b.errs...)
		mu.Unlock()
		if len(errs) > 0 {
			return fmt.Errorf("consumer group errors: %v", errs)
		}
		a.close()
		b.close()
		if err := waitFor(ctx, "group empty after both left", func() error {
			gd, err := adm.DescribeConsumerGroups([]string{group})
			if err != nil {
				return err
			}
			if g := gd[0]; g.State != "Empty" || len(g.Members) != 0 {
				return fmt.Errorf("state %q with %d members", g.State, len(g.Members))
			}
			return nil
		}); err != nil {
			return err
		}

		if err := produce(5, "second"); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		mu.Lock()
		consumed = nil
		delete(assigned, "A")
		delete(assigned, "B")
		mu.Unlock()
		c, err := startSaramaMember(ctx, e, strategy, "C", group, topic, &mu, assigned, record)
		if err != nil {
			return err
		}
		defer c.close()
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
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		err = checkConsumedSplit(consumed, nil, parts, 10, 15)
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("new member after the commits: %w", err)
		}
		if err := c.commit(); err != nil {
			return err
		}
		if err := saramaCheckCommitted(ctx, adm, group, topic, parts, 15); err != nil {
			return err
		}
		c.close()
		_ = adm.DeleteTopic(topic)
		return nil
	}
}

func saramaCheckCommitted(ctx context.Context, adm sarama.ClusterAdmin, group, topic string, parts int32, want int64) error {
	ps := make([]int32, parts)
	for i := range ps {
		ps[i] = int32(i)
	}
	r, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		return fmt.Errorf("ListConsumerGroupOffsets: %w", err)
	}
	if r.Err != sarama.ErrNoError {
		return fmt.Errorf("ListConsumerGroupOffsets: %w", r.Err)
	}
	for _, p := range ps {
		b := r.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != want {
			return fmt.Errorf("committed offset of %s/%d: %+v, want %d", topic, p, b, want)
		}
	}
	return nil
}

// realErr: Sarama reports success as a non-nil ErrNoError in places.
func realErr(err error) error {
	if errors.Is(err, sarama.ErrNoError) {
		return nil
	}
	return err
}

func saramaConfigEntry(entries []sarama.ConfigEntry, name string) (sarama.ConfigEntry, bool) {
	for _, c := range entries {
		if c.Name == name {
			return c, true
		}
	}
	return sarama.ConfigEntry{}, false
}

// saramaAdmin: ClusterAdmin against topics, configs, offsets and groups.
func saramaAdmin(ctx context.Context, e *env) error {
	topic := unique("go-sarama-admin")
	group := unique("go-sarama-admin")
	adm, err := saramaAdminClient(e)
	if err != nil {
		return err
	}
	defer adm.Close()

	brokers, controller, err := adm.DescribeCluster()
	if err != nil || len(brokers) == 0 || controller < 0 {
		return fmt.Errorf("DescribeCluster: %d brokers, controller %d, %v", len(brokers), controller, err)
	}
	// Topics.
	if err := saramaCreateTopic(ctx, adm, topic, 2, map[string]*string{"retention.ms": strp("3600000")}); err != nil {
		return err
	}
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("creating %s again: %v, want TOPIC_ALREADY_EXISTS", topic, err)
	}
	if err := adm.CreateTopic(unique("go-sarama-admin-validate"), &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, true); err != nil {
		return fmt.Errorf("CreateTopic validateOnly: %w", err)
	}
	topics, err := adm.ListTopics()
	if err != nil {
		return fmt.Errorf("ListTopics: %w", err)
	}
	d, ok := topics[topic]
	if !ok || d.NumPartitions != 2 || d.ReplicationFactor != 1 {
		return fmt.Errorf("ListTopics: %s %+v (found %v)", topic, d, ok)
	}
	if v := d.ConfigEntries["retention.ms"]; v == nil || *v != "3600000" {
		return fmt.Errorf("ListTopics: %s config entries %v lack retention.ms=3600000", topic, d.ConfigEntries)
	}
	if err := adm.CreatePartitions(topic, 4, nil, false); err != nil {
		return fmt.Errorf("CreatePartitions to 4: %w", err)
	}
	if err := saramaWaitPartitions(ctx, adm, topic, 4); err != nil {
		return err
	}
	if err := adm.CreatePartitions(topic, 3, nil, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
		return fmt.Errorf("CreatePartitions to fewer: %v, want INVALID_PARTITIONS", err)
	}

	// Configs.
	res := sarama.ConfigResource{Type: sarama.TopicResource, Name: topic}
	entries, err := adm.DescribeConfig(res)
	if err != nil {
		return fmt.Errorf("DescribeConfig: %w", err)
	}
	if c, ok := saramaConfigEntry(entries, "retention.ms"); !ok || c.Value != "3600000" || c.Source != sarama.SourceTopic || c.Default {
		return fmt.Errorf("retention.ms: %+v (found %v), want 3600000 from the topic", c, ok)
	}
	if c, ok := saramaConfigEntry(entries, "cleanup.policy"); !ok || c.Value != "delete" {
		return fmt.Errorf("cleanup.policy: %+v (found %v), want the default delete", c, ok)
	}
	// AlterConfig (non-incremental): the new set replaces the old one.
	if err := adm.AlterConfig(sarama.TopicResource, topic, map[string]*string{"max.message.bytes": strp("500000"), "segment.ms": strp("600000")}, false); err != nil {
		return fmt.Errorf("AlterConfig: %w", err)
	}
	if err := waitFor(ctx, "AlterConfig visible", func() error {
		entries, err := adm.DescribeConfig(res)
		if err != nil {
			return err
		}
		if c, _ := saramaConfigEntry(entries, "max.message.bytes"); c.Value != "500000" {
			return fmt.Errorf("max.message.bytes %+v", c)
		}
		if c, _ := saramaConfigEntry(entries, "retention.ms"); c.Value == "3600000" || c.Source == sarama.SourceTopic {
			return fmt.Errorf("retention.ms %+v survived a non-incremental AlterConfig", c)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		"retention.ms":      {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strp("7200000")},
		"max.message.bytes": {Operation: sarama.IncrementalAlterConfigsOperationDelete},
	}, false); err != nil {
		return fmt.Errorf("IncrementalAlterConfig: %w", err)
	}
	if err := waitFor(ctx, "IncrementalAlterConfig visible", func() error {
		entries, err := adm.DescribeConfig(res)
		if err != nil {
			return err
		}
		if c, _ := saramaConfigEntry(entries, "retention.ms"); c.Value != "7200000" {
			return fmt.Errorf("retention.ms %+v", c)
		}
		if c, _ := saramaConfigEntry(entries, "max.message.bytes"); c.Value == "500000" || c.Source == sarama.SourceTopic {
			return fmt.Errorf("max.message.bytes %+v after delete", c)
		}
		if c, _ := saramaConfigEntry(entries, "segment.ms"); c.Value != "600000" {
			return fmt.Errorf("segment.ms %+v lost by an incremental alter", c)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := adm.AlterConfig(sarama.TopicResource, topic, map[string]*string{"no.such.config": strp("1")}, false); err == nil {
		return fmt.Errorf("AlterConfig of an unknown key succeeded")
	}
	if _, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: fmt.Sprint(brokers[0].ID())}); err != nil {
		return fmt.Errorf("DescribeConfig broker %d: %w", brokers[0].ID(), err)
	}

	// Offsets: produce to partition 0, list, delete records.
	pcfg := saramaConfig(e)
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{e.bootstrap}, pcfg)
	if err != nil {
		return err
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprint(i))})
	}
	if err := prod.SendMessages(msgs); err != nil {
		return fmt.Errorf("SendMessages: %w", err)
	}
	listOne := func(what string, p int32, at, want int64) error {
		r, err := adm.ListOffsets(map[string]map[int32]int64{topic: {p: at}}, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		o := r[topic][p]
		if o == nil || realErr(o.Err) != nil || o.Offset != want {
			return fmt.Errorf("%s %s/%d: %+v, want offset %d", what, topic, p, o, want)
		}
		return nil
	}
	if err := listOne("ListOffsets newest", 0, sarama.OffsetNewest, 10); err != nil {
		return err
	}
	if err := listOne("ListOffsets oldest", 0, sarama.OffsetOldest, 0); err != nil {
		return err
	}
	if err := listOne("ListOffsets newest (empty partition)", 2, sarama.OffsetNewest, 0); err != nil {
		return err
	}
	if err := adm.DeleteRecords(topic, map[int32]int64{0: 4}); err != nil {
		return fmt.Errorf("DeleteRecords: %w", err)
	}
	if err := listOne("ListOffsets oldest after DeleteRecords", 0, sarama.OffsetOldest, 4); err != nil {
		return err
	}
	if err := adm.DeleteRecords(topic, map[int32]int64{0: 11}); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return fmt.Errorf("DeleteRecords past the end (11 > 10): %v, want OFFSET_OUT_OF_RANGE", err)
	}
	// The partition consumer refuses a deleted offset, and reads from the new start.
	cons, err := sarama.NewConsumer([]string{e.bootstrap}, saramaConfig(e))
	if err != nil {
		return err
	}
	defer cons.Close()
	if pc, err := cons.ConsumePartition(topic, 0, 1); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		if pc != nil {
			pc.Close()
		}
		return fmt.Errorf("ConsumePartition at deleted offset 1: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	if gots, err := saramaReadBack(ctx, e, topic, map[int32][2]int64{0: {4, 10}}, sarama.V4_0_0_0); err != nil || len(gots) != 6 || gots[0].offset != 4 {
		return fmt.Errorf("consuming %s/0 from the new start 4: %v %v", topic, gots, err)
	}

	// Group offsets without members.
	cr, err := adm.AlterConsumerGroupOffsets(group, map[string]map[int32]sarama.OffsetAndMetadata{
		topic: {0: {Offset: 6, Metadata: "meta-0", LeaderEpoch: -1}, 1: {Offset: 0, LeaderEpoch: -1}},
	}, nil)
	if err != nil {
		return fmt.Errorf("AlterConsumerGroupOffsets: %w", err)
	}
	for _, ps := range cr.Errors {
		for p, kerr := range ps {
			if kerr != sarama.ErrNoError {
				return fmt.Errorf("AlterConsumerGroupOffsets %s/%d: %v", topic, p, kerr)
			}
		}
	}
	fr, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil {
		return fmt.Errorf("ListConsumerGroupOffsets: %w", err)
	}
	if b := fr.GetBlock(topic, 0); b == nil || b.Offset != 6 || b.Metadata != "meta-0" || b.Err != sarama.ErrNoError {
		return fmt.Errorf("ListConsumerGroupOffsets %s/0: %+v, want 6 meta-0", topic, b)
	}
	groups, err := adm.ListConsumerGroups()
	if err != nil {
		return fmt.Errorf("ListConsumerGroups: %w", err)
	}
	if _, ok := groups[group]; !ok {
		return fmt.Errorf("ListConsumerGroups: %s not listed", group)
	}
	gd, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil || len(gd) != 1 {
		return fmt.Errorf("DescribeConsumerGroups: %v %v", err, gd)
	}
	if g := gd[0]; g.Err != sarama.ErrNoError || g.State != "Empty" || len(g.Members) != 0 {
		return fmt.Errorf("DescribeConsumerGroups %s: %+v, want Empty", group, g)
	}
	if err := adm.DeleteConsumerGroupOffset(group, topic, 1); err != nil {
		return fmt.Errorf("DeleteConsumerGroupOffset: %w", err)
	}
	fr, err = adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil {
		return fmt.Errorf("ListConsumerGroupOffsets: %w", err)
	}
	if b := fr.GetBlock(topic, 1); b != nil && b.Offset >= 0 {
		return fmt.Errorf("offset of %s/1 still %d after DeleteConsumerGroupOffset", topic, b.Offset)
	}
	if b := fr.GetBlock(topic, 0); b == nil || b.Offset != 6 {
		return fmt.Errorf("offset of %s/0 gone after deleting partition 1's: %+v", topic, b)
	}

	// An active group with one member.
	active := unique("go-sarama-admin-active")
	var mu sync.Mutex
	assigned := map[string]map[int32]bool{}
	m, err := startSaramaMember(ctx, e, "range", "M", active, topic, &mu, assigned, func(consumedBy) {})
	if err != nil {
		return err
	}
	defer m.close()
	if err := waitFor(ctx, "active member owning all partitions", func() error {
		mu.Lock()
		defer mu.Unlock()
		return splitOK(4, assigned)
	}); err != nil {
		return err
	}
	if err := waitFor(ctx, "active group described Stable", func() error {
		gd, err := adm.DescribeConsumerGroups([]string{active})
		if err != nil {
			return err
		}
		g := gd[0]
		if g.Err != sarama.ErrNoError || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 1 {
			return fmt.Errorf("state %q protocol %q/%q members %d err %v", g.State, g.ProtocolType, g.Protocol, len(g.Members), g.Err)
		}
		for _, md := range g.Members {
			a, err := md.GetMemberAssignment()
			if err != nil {
				return fmt.Errorf("member assignment: %w", err)
			}
			if len(a.Topics[topic]) != 4 {
				return fmt.Errorf("described assignment %v, want 4 partitions of %s", a.Topics, topic)
			}
			if _, err := md.GetMemberMetadata(); err != nil {
				return fmt.Errorf("member metadata: %w", err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	groups, err = adm.ListConsumerGroups()
	if err != nil {
		return fmt.Errorf("ListConsumerGroups: %w", err)
	}
	if pt := groups[active]; pt != "consumer" {
		return fmt.Errorf("ListConsumerGroups: %s has protocol type %q, want consumer", active, pt)
	}
	// Offsets of a group with members cannot be altered from outside, nor the group deleted.
	cr, err = adm.AlterConsumerGroupOffsets(active, map[string]map[int32]sarama.OffsetAndMetadata{topic: {0: {Offset: 5, LeaderEpoch: -1}}}, nil)
	if err == nil {
		if kerr := cr.Errors[topic][0]; kerr != sarama.ErrNoError {
			err = kerr
		}
	}
	if !errors.Is(err, sarama.ErrUnknownMemberId) {
		return fmt.Errorf("AlterConsumerGroupOffsets into the active group: %v, want UNKNOWN_MEMBER_ID", err)
	}
	if err := adm.DeleteConsumerGroup(active); !errors.Is(err, sarama.ErrNonEmptyGroup) {
		return fmt.Errorf("DeleteConsumerGroup of the active group: %v, want NON_EMPTY_GROUP", err)
	}
	if err := adm.DeleteConsumerGroupOffset(active, topic, 0); !errors.Is(err, sarama.ErrGroupSubscribedToTopic) {
		return fmt.Errorf("DeleteConsumerGroupOffset of a topic the active group consumes: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	m.close()

	for _, g := range []string{group, active} {
		if err := waitFor(ctx, "DeleteConsumerGroup "+g, func() error { return adm.DeleteConsumerGroup(g) }); err != nil {
			return err
		}
	}
	groups, err = adm.ListConsumerGroups()
	if err != nil {
		return fmt.Errorf("ListConsumerGroups: %w", err)
	}
	if _, ok := groups[group]; ok {
		return fmt.Errorf("%s still listed after DeleteConsumerGroup", group)
	}
	if err := adm.DeleteTopic(topic); err != nil {
		return fmt.Errorf("DeleteTopic: %w", err)
	}
	return waitFor(ctx, "topic gone after DeleteTopic", func() error {
		topics, err := adm.ListTopics()
		if err != nil {
			return err
		}
		if _, ok := topics[topic]; ok {
			return fmt.Errorf("still listed")
		}
		return nil
	})
}
