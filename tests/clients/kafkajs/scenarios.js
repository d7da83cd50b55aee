#!/usr/bin/env node
// KafkaJS 2.2.4 client-compatibility scenarios, run against Sluice or Apache Kafka by
// tests/kafkajs_clients.rs:
//
//   node scenarios.js --bootstrap 127.0.0.1:9092 --broker sluice --scenarios kafkajs-admin,kafkajs-group
//
// Prints exactly one line per scenario on stdout, `PASS name` or `FAIL name: reason`;
// diagnostics (and KafkaJS's own warnings) go to stderr. Exits 1 if any scenario
// failed, 2 on bad arguments.
'use strict'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes, AssignerProtocol, Partitioners } = require('kafkajs')

// ---- arguments ----

function parseArgs(argv) {
  const args = { bootstrap: '127.0.0.1:9092', broker: 'sluice', scenarios: '' }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?(bootstrap|broker|scenarios)(?:=(.*))?$/.exec(argv[i])
    if (!m) {
      console.error(`unknown argument ${argv[i]}`)
      process.exit(2)
    }
    args[m[1]] = m[2] !== undefined ? m[2] : argv[++i]
  }
  if (args.broker !== 'sluice' && args.broker !== 'kafka') {
    console.error(`--broker must be sluice or kafka, not ${args.broker}`)
    process.exit(2)
  }
  return args
}

// ---- helpers ----

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function unique(prefix) {
  return `${prefix}-${Date.now() % 1e9}-${Math.floor(Math.random() * 0xffffff).toString(16)}`
}

function fail(msg) {
  throw new Error(msg)
}

function assert(cond, msg) {
  if (!cond) fail(typeof msg === 'function' ? msg() : msg)
}

// Poll `cond` (async; returns nothing when satisfied, or throws / returns a string
// saying what is still wrong) every 100 ms until it holds or `deadline` (ms epoch) passes.
async function waitFor(ctx, what, cond) {
  let last
  for (;;) {
    try {
      last = await cond()
      if (!last) return
    } catch (e) {
      last = e && e.message ? e.message : String(e)
    }
    if (Date.now() > ctx.deadline) fail(`${what}: ${last} (gave up at the scenario deadline)`)
    await sleep(100)
  }
}

function stderrLogCreator(name) {
  return () => ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`[${name}] kafkajs ${label} ${namespace}: ${message} ${JSON.stringify(extra)}\n`)
  }
}

function makeKafka(ctx, clientId) {
  return new Kafka({
    clientId: clientId || `sluice-kafkajs-test-${ctx.name}`,
    brokers: [ctx.bootstrap],
    connectionTimeout: 10000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator(ctx.name),
  })
}

function log(ctx, msg) {
  const at = ctx.started ? ` +${((Date.now() - ctx.started) / 1000).toFixed(2)}s` : ''
  process.stderr.write(`[${ctx.name}${at}] ${msg}\n`)
}

// Connected admin, closed by the scenario's cleanup.
async function connectAdmin(ctx, kafka) {
  const admin = kafka.admin({ retry: { initialRetryTime: 100, retries: 8 } })
  await admin.connect()
  ctx.cleanup.push(() => admin.disconnect())
  return admin
}

async function connectProducer(ctx, kafka, opts) {
  // KafkaJS 2's default partitioner (murmur2, as Java's), named to silence its warning.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...opts })
  await producer.connect()
  ctx.cleanup.push(() => producer.disconnect())
  return producer
}

async function createTopic(ctx, admin, topic, numPartitions, configEntries) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries: configEntries || [] }],
    waitForLeaders: true,
    timeout: 20000,
  })
  assert(created === true, `createTopics(${topic}) returned ${created}, want true (created)`)
  await waitPartitions(ctx, admin, topic, numPartitions)
}

async function waitPartitions(ctx, admin, topic, n) {
  await waitFor(ctx, `topic ${topic} metadata`, async () => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    const t = md.topics.find(x => x.name === topic)
    if (!t) return 'not in metadata'
    if (t.partitions.length !== n) return `${t.partitions.length} partitions, want ${n}`
    const noLeader = t.partitions.filter(p => p.leader < 0 || p.partitionErrorCode)
    if (noLeader.length) return `partitions without a leader: ${JSON.stringify(noLeader)}`
  })
}

function headerString(v) {
  if (Array.isArray(v)) return v.map(headerString)
  return v === null || v === undefined ? null : v.toString()
}

// ---- the records the produce scenarios write ----

function testMessages(n, tag) {
  const out = []
  // Distinct CreateTimes, in the past and not in produce order.
  const base = Date.now() - 2 * 3600 * 1000
  for (let i = 0; i < n; i++) {
    const m = {
      partition: i % 3,
      timestamp: String(base + ((i * 7) % n) * 1000),
      key: `key-${String(i).padStart(3, '0')}`,
      value: i === 3 ? null : `value-${i}-${tag}-${'compressible '.repeat(20)}`,
      headers: { 'h-index': String(i), 'h-tag': tag, 'h-empty': '' },
    }
    if (i % 5 === 0) m.headers['h-index'] = [String(i), 'dup'] // a repeated header key
    out.push(m)
  }
  return out
}

// A group consumer reading one topic from the beginning; resolves once `want` records
// are in; returns them with the batch context.
async function readAll(ctx, kafka, topic, want) {
  const consumer = kafka.consumer({
    groupId: unique('kafkajs-readback'),
    sessionTimeout: 10000,
    heartbeatInterval: 300,
    maxWaitTimeInMs: 250,
  })
  await consumer.connect()
  ctx.cleanup.push(() => consumer.disconnect())
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const got = []
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push({ partition, message })
    },
  })
  await waitFor(ctx, `reading ${want} records of ${topic}`, async () =>
    got.length >= want ? undefined : `${got.length} read`
  )
  await sleep(300) // anything extra shows up
  await consumer.disconnect()
  return got
}

function produceScenario(codec, idempotent) {
  return async ctx => {
    const kafka = makeKafka(ctx)
    const admin = await connectAdmin(ctx, kafka)
    const topic = unique(`kafkajs-produce-${codec}`)
    await createTopic(ctx, admin, topic, 3)
    const producer = await connectProducer(ctx, kafka, idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {})
    const messages = testMessages(60, codec)
    const compression = codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
    // Two sends: the idempotent producer's sequence numbers continue across batches.
    const expected = []
    for (const part of [messages.slice(0, 30), messages.slice(30)]) {
      const res = await producer.send({ topic, acks: -1, compression, messages: part })
      // One batch per partition, in order: offsets follow the partition's baseOffset.
      const base = {}
      for (const r of res) {
        assert(r.errorCode === 0, `produce to ${topic}/${r.partition}: error ${r.errorCode}`)
        base[r.partition] = BigInt(r.baseOffset)
      }
      for (const m of part) {
        assert(base[m.partition] !== undefined, `no produce result for partition ${m.partition}`)
        expected.push({ ...m, offset: base[m.partition].toString() })
        base[m.partition] += 1n
      }
    }
    const got = await readAll(ctx, kafka, topic, expected.length)
    assert(got.length === expected.length, `read ${got.length} records, produced ${expected.length}`)
    const byPos = new Map(got.map(g => [`${g.partition}/${g.message.offset}`, g]))
    assert(byPos.size === got.length, 'a record was read twice')
    expected.forEach((w, i) => {
      const g = byPos.get(`${w.partition}/${w.offset}`)
      assert(g, `record #${i} (${w.partition}/${w.offset}) not read`)
      const m = g.message
      assert(m.key && m.key.toString() === w.key, () => `record #${i}: key ${m.key}, want ${w.key}`)
      if (w.value === null) assert(m.value === null, () => `record #${i}: value ${m.value}, want null`)
      else assert(m.value !== null && m.value.toString() === w.value, () => `record #${i}: value ${m.value}, want ${w.value}`)
      const hs = {}
      for (const [k, v] of Object.entries(m.headers)) hs[k] = headerString(v)
      assert(JSON.stringify(hs) === JSON.stringify(w.headers), () => `record #${i}: headers ${JSON.stringify(hs)}, want ${JSON.stringify(w.headers)}`)
      assert(m.timestamp === w.timestamp, () => `record #${i}: timestamp ${m.timestamp}, produced with ${w.timestamp}`)
      if (idempotent) {
        assert(BigInt(m.batchContext.producerId) >= 0n, () => `record #${i}: batch producer id ${m.batchContext.producerId}, want >= 0`)
      }
    })
    await admin.deleteTopics({ topics: [topic] }).catch(() => {})
  }
}

// ---- consumer groups ----

function startMember(ctx, kafka, name, groupId, topic, state, onMessage) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 20000,
    heartbeatInterval: 300,
    maxWaitTimeInMs: 250,
    retry: { initialRetryTime: 100, retries: 8 },
  })
  const own = new Set()
  state.assigned[name] = own
  const m = { name, consumer, own, next: {}, crashed: null }
  consumer.on(consumer.events.GROUP_JOIN, e => {
    own.clear()
    for (const p of e.payload.memberAssignment[topic] || []) own.add(p)
    log(ctx, `${name} joined (protocol ${e.payload.groupProtocol}): owns ${[...own].sort()}`)
  })
  consumer.on(consumer.events.REBALANCING, () => {
    own.clear()
    log(ctx, `${name} rebalancing`)
  })
  consumer.on(consumer.events.CRASH, e => {
    m.crashed = e.payload.error
    log(ctx, `${name} CRASHED: ${e.payload.error}`)
  })
  ctx.cleanup.push(() => consumer.disconnect())
  m.start = async () => {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        m.next[partition] = (BigInt(message.offset) + 1n).toString()
        onMessage({ member: name, partition, offset: Number(message.offset) })
      },
    })
  }
  m.commit = () =>
    consumer.commitOffsets(Object.entries(m.next).map(([partition, offset]) => ({ topic, partition: Number(partition), offset })))
  return m
}

// The assignments are a split of 0..n-1, every member owning at least one partition.
function splitError(n, assigned) {
  const owner = {}
  for (const [m, ps] of Object.entries(assigned)) {
    if (ps.size === 0) return `member ${m} owns nothing (${describeAssigned(assigned)})`
    for (const p of ps) {
      if (owner[p] !== undefined) return `partition ${p} owned by ${owner[p]} and ${m}`
      owner[p] = m
    }
  }
  if (Object.keys(owner).length !== n) return `${Object.keys(owner).length} of ${n} partitions owned (${describeAssigned(assigned)})`
  return undefined
}

function describeAssigned(assigned) {
  return Object.entries(assigned)
    .map(([m, ps]) => `${m}:[${[...ps].sort()}]`)
    .join(' ')
}

function checkConsumed(consumed, owners, n, from, to) {
  const seen = new Map()
  for (const c of consumed) {
    const k = `${c.partition}/${c.offset}`
    if (seen.has(k)) return `${k} consumed twice (by ${seen.get(k)} and ${c.member})`
    seen.set(k, c.member)
    if (c.offset < from || c.offset >= to) return `${c.member} consumed ${k}, outside [${from},${to})`
    if (owners && owners[c.partition] !== c.member) return `${c.member} consumed ${k}, but ${owners[c.partition]} owns it`
  }
  if (seen.size !== n * (to - from)) return `consumed ${seen.size} distinct records, want ${n * (to - from)}`
  return undefined
}

async function checkCommitted(admin, groupId, topic, n, want) {
  const fo = await admin.fetchOffsets({ groupId, topics: [topic] })
  const t = fo.find(x => x.topic === topic)
  assert(t, `fetchOffsets(${groupId}): no entry for ${topic}: ${JSON.stringify(fo)}`)
  for (let p = 0; p < n; p++) {
    const e = t.partitions.find(x => x.partition === p)
    assert(e && e.offset === String(want), `committed offset of ${topic}/${p}: ${JSON.stringify(e)}, want ${want}`)
  }
}

async function groupScenario(ctx) {
  const parts = 4
  const kafka = makeKafka(ctx)
  const admin = await connectAdmin(ctx, kafka)
  const topic = unique('kafkajs-group')
  const groupId = unique('kafkajs-group')
  await createTopic(ctx, admin, topic, parts)
  const producer = await connectProducer(ctx, kafka)
  const produce = (n, tag) => {
    const messages = []
    for (let p = 0; p < parts; p++) for (let i = 0; i < n; i++) messages.push({ partition: p, key: `p${p}-${tag}-${i}`, value: tag })
    return producer.send({ topic, acks: -1, messages })
  }
  const state = { assigned: {} }
  let consumed = []
  const onMessage = c => consumed.push(c)

  const a = startMember(ctx, kafka, 'A', groupId, topic, state, onMessage)
  await a.start()
  await waitFor(ctx, 'A owning all partitions', async () => splitError(parts, state.assigned))
  const b = startMember(ctx, kafka, 'B', groupId, topic, state, onMessage)
  await b.start()
  await waitFor(ctx, 'A and B splitting the partitions', async () => splitError(parts, state.assigned))
  const owners = {}
  for (const [m, ps] of Object.entries(state.assigned)) for (const p of ps) owners[p] = m
  log(ctx, `split: ${describeAssigned(state.assigned)}`)
  const desc = await admin.describeGroups([groupId])
  const g = desc.groups[0]
  assert(
    g.state === 'Stable' && g.protocolType === 'consumer' && g.protocol === 'RoundRobinAssigner' && g.members.length === 2,
    () => `describeGroups: state ${g.state} protocol ${g.protocolType}/${g.protocol} members ${g.members.length}; want Stable consumer/RoundRobinAssigner with 2`
  )
  await produce(10, 'first')
  await waitFor(ctx, 'A and B consuming 40 records', async () => (consumed.length >= parts * 10 ? undefined : `${consumed.length} consumed`))
  await sleep(300)
  let err = checkConsumed(consumed, owners, parts, 0, 10) || splitError(parts, state.assigned)
  assert(!err, err)
  assert(!a.crashed && !b.crashed, `a member crashed: ${a.crashed || b.crashed}`)
  await a.commit()
  await b.commit()
  await checkCommitted(admin, groupId, topic, parts, 10)
  await a.consumer.disconnect()
  await b.consumer.disconnect()
  await waitFor(ctx, 'group empty after both left', async () => {
    const d = (await admin.describeGroups([groupId])).groups[0]
    if (d.state !== 'Empty' || d.members.length) return `state ${d.state} with ${d.members.length} members`
  })

  await produce(5, 'second')
  consumed = []
  delete state.assigned.A
  delete state.assigned.B
  const c = startMember(ctx, kafka, 'C', groupId, topic, state, x => consumed.push(x))
  await c.start()
  await waitFor(ctx, 'C consuming the 20 new records', async () => (consumed.length >= parts * 5 ? undefined : `${consumed.length} consumed`))
  await sleep(500)
  err = checkConsumed(consumed, null, parts, 10, 15)
  assert(!err, `new member after the commits: ${err}`)
  await c.commit()
  await checkCommitted(admin, groupId, topic, parts, 15)
  await c.consumer.disconnect()
  await admin.deleteTopics({ topics: [topic] }).catch(() => {})
}

// ---- admin ----

function configEntry(resp, name) {
  const r = resp.resources[0]
  assert(r.errorCode === 0, `describeConfigs: error ${r.errorCode} ${r.errorMessage}`)
  return r.configEntries.find(c => c.configName === name)
}

async function expectReject(promise, what, check) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  assert(err, `${what} succeeded`)
  if (check) check(err)
  return err
}

async function adminScenario(ctx) {
  const kafka = makeKafka(ctx)
  const admin = await connectAdmin(ctx, kafka)
  const topic = unique('kafkajs-admin')
  const groupId = unique('kafkajs-admin')

  const cluster = await admin.describeCluster()
  assert(cluster.brokers.length >= 1 && cluster.controller !== null && cluster.controller >= 0, `describeCluster: ${JSON.stringify(cluster)}`)

  // Topics.
  await createTopic(ctx, admin, topic, 2, [{ name: 'retention.ms', value: '3600000' }])
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] })
  assert(again === false, `createTopics of an existing topic returned ${again}, want false`)
  const validated = await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: unique('kafkajs-admin-validate'), numPartitions: 1 }] })
  assert(validated === true || validated === false, `createTopics validateOnly returned ${validated}`)
  const topics = await admin.listTopics()
  assert(topics.includes(topic), `listTopics lacks ${topic}`)
  await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
  await waitPartitions(ctx, admin, topic, 4)
  await expectReject(admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] }), 'createPartitions to fewer', e =>
    assert(e.type === 'INVALID_PARTITIONS' || /INVALID_PARTITIONS|partitions/i.test(e.message), `createPartitions to fewer: ${e.type} ${e.message}`)
  )

  log(ctx, 'configs')
  // Configs.
  const topicResource = { type: ConfigResourceTypes.TOPIC, name: topic }
  let cfg = await admin.describeConfigs({ resources: [topicResource], includeSynonyms: false })
  let e = configEntry(cfg, 'retention.ms')
  assert(e && e.configValue === '3600000' && e.isDefault === false && e.configSource === 1, `retention.ms: ${JSON.stringify(e)}, want 3600000 from DYNAMIC_TOPIC_CONFIG (1)`)
  e = configEntry(cfg, 'cleanup.policy')
  assert(e && e.configValue === 'delete', `cleanup.policy: ${JSON.stringify(e)}, want the default delete`)
  const some = await admin.describeConfigs({ resources: [{ ...topicResource, configNames: ['retention.ms'] }], includeSynonyms: true })
  assert(some.resources[0].configEntries.length === 1, `describeConfigs(configNames=[retention.ms]) returned ${some.resources[0].configEntries.length} entries`)
  // alterConfigs is the non-incremental AlterConfigs: the new set replaces the old one.
  await admin.alterConfigs({ validateOnly: false, resources: [{ ...topicResource, configEntries: [{ name: 'max.message.bytes', value: '500000' }] }] })
  await waitFor(ctx, 'alterConfigs visible', async () => {
    const c = await admin.describeConfigs({ resources: [topicResource], includeSynonyms: false })
    const mmb = configEntry(c, 'max.message.bytes')
    const ret = configEntry(c, 'retention.ms')
    if (!mmb || mmb.configValue !== '500000') return `max.message.bytes ${JSON.stringify(mmb)}`
    if (!ret || ret.configValue === '3600000' || ret.configSource === 1) return `retention.ms ${JSON.stringify(ret)} survived a non-incremental alter`
  })
  await expectReject(
    admin.alterConfigs({ resources: [{ ...topicResource, configEntries: [{ name: 'no.such.config', value: '1' }] }] }),
    'alterConfigs of an unknown key'
  )
  cfg = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: String(cluster.brokers[0].nodeId) }], includeSynonyms: false })
  assert(cfg.resources[0].errorCode === 0 && cfg.resources[0].configEntries.length > 0, `describeConfigs broker: ${JSON.stringify(cfg.resources[0]).slice(0, 300)}`)

  log(ctx, 'offsets')
  // Offsets.
  const producer = await connectProducer(ctx, kafka)
  const base = Date.now() - 3600 * 1000
  const messages = []
  for (let i = 0; i < 10; i++) messages.push({ partition: 0, value: String(i), timestamp: String(base + i * 1000) })
  await producer.send({ topic, acks: -1, messages })
  let offs = await admin.fetchTopicOffsets(topic)
  let p0 = offs.find(o => o.partition === 0)
  assert(p0 && p0.low === '0' && p0.high === '10' && p0.offset === '10', `fetchTopicOffsets ${topic}/0: ${JSON.stringify(p0)}, want low 0 high 10`)
  const p2 = offs.find(o => o.partition === 2)
  assert(p2 && p2.low === '0' && p2.high === '0', `fetchTopicOffsets ${topic}/2: ${JSON.stringify(p2)}, want 0/0`)
  const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, base + 2500)
  p0 = byTs.find(o => o.partition === 0)
  assert(p0 && p0.offset === '3', `fetchTopicOffsetsByTimestamp ${topic}/0: ${JSON.stringify(p0)}, want 3`)
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] })
  offs = await admin.fetchTopicOffsets(topic)
  p0 = offs.find(o => o.partition === 0)
  assert(p0 && p0.low === '4' && p0.high === '10', `fetchTopicOffsets after deleteTopicRecords: ${JSON.stringify(p0)}, want low 4`)

  log(ctx, 'group offsets (setOffsets: KafkaJS waits ~5 s for a fetch)')
  // Group offsets of a group without running members.
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '6' }, { partition: 1, offset: '0' }] })
  let fo = await admin.fetchOffsets({ groupId, topics: [topic] })
  let t = fo.find(x => x.topic === topic)
  const offsetOf = (tt, p) => (tt.partitions.find(x => x.partition === p) || {}).offset
  assert(t && offsetOf(t, 0) === '6' && offsetOf(t, 1) === '0' && offsetOf(t, 2) === '-1', `fetchOffsets after setOffsets: ${JSON.stringify(fo)}`)
  const groups = await admin.listGroups()
  assert(groups.groups.some(g => g.groupId === groupId), `listGroups lacks ${groupId}: ${JSON.stringify(groups.groups.slice(0, 20))}`)
  let d = (await admin.describeGroups([groupId])).groups[0]
  assert(d.errorCode === 0 && d.state === 'Empty' && d.members.length === 0, `describeGroups ${groupId}: ${JSON.stringify(d)}, want Empty`)
  log(ctx, 'resetOffsets earliest (KafkaJS waits ~10 s)')
  await admin.resetOffsets({ groupId, topic, earliest: true })
  fo = await admin.fetchOffsets({ groupId, topics: [topic], resolveOffsets: true })
  t = fo.find(x => x.topic === topic)
  assert(t && offsetOf(t, 0) === '4' && offsetOf(t, 1) === '0' && offsetOf(t, 3) === '0', `fetchOffsets(resolveOffsets) after resetOffsets(earliest): ${JSON.stringify(fo)}, want 4,0,0,0`)
  log(ctx, 'active group')
  // An active group with one member.
  const active = unique('kafkajs-admin-active')
  const state = { assigned: {} }
  const m = startMember(ctx, kafka, 'M', active, topic, state, () => {})
  await m.start()
  await waitFor(ctx, 'active member owning all partitions', async () => splitError(4, state.assigned))
  await waitFor(ctx, 'active group described Stable', async () => {
    const g = (await admin.describeGroups([active])).groups[0]
    if (g.state !== 'Stable' || g.protocolType !== 'consumer' || g.protocol !== 'RoundRobinAssigner' || g.members.length !== 1) {
      return `state ${g.state} protocol ${g.protocolType}/${g.protocol} members ${g.members.length}`
    }
    const a = AssignerProtocol.MemberAssignment.decode(g.members[0].memberAssignment)
    if (!a || !a.assignment[topic] || a.assignment[topic].length !== 4) return `member assignment ${JSON.stringify(a)}, want 4 partitions of ${topic}`
    const md = AssignerProtocol.MemberMetadata.decode(g.members[0].memberMetadata)
    if (!md || !md.topics.includes(topic)) return `member metadata ${JSON.stringify(md)} lacks ${topic}`
  })
  log(ctx, 'active group: listGroups, setOffsets, deleteGroups')
  const listed = (await admin.listGroups()).groups.find(g => g.groupId === active)
  assert(listed && listed.protocolType === 'consumer', `listGroups: ${active} ${JSON.stringify(listed)}, want protocolType consumer`)
  await expectReject(admin.setOffsets({ groupId: active, topic, partitions: [{ partition: 0, offset: '5' }] }), 'setOffsets on an active group')
  await expectReject(admin.deleteGroups([active]), 'deleteGroups of an active group', err => {
    const ge = err.groups && err.groups.find(x => x.groupId === active)
    assert(ge && ge.error && ge.error.type === 'NON_EMPTY_GROUP', `deleteGroups of an active group: ${err.message} ${JSON.stringify(err.groups)}, want NON_EMPTY_GROUP`)
  })
  log(ctx, 'deleteGroups')
  await m.consumer.disconnect()

  const dg = await admin.deleteGroups([groupId, active])
  for (const r of dg) assert(r.errorCode === 0, `deleteGroups ${r.groupId}: ${r.errorCode}`)
  const after = await admin.listGroups()
  assert(!after.groups.some(g => g.groupId === groupId || g.groupId === active), 'deleted groups still listed')
  fo = await admin.fetchOffsets({ groupId, topics: [topic] })
  t = fo.find(x => x.topic === topic)
  assert(!t || t.partitions.every(p => p.offset === '-1'), `offsets of a deleted group: ${JSON.stringify(fo)}`)

  log(ctx, 'deleteTopics')
  await admin.deleteTopics({ topics: [topic], timeout: 20000 })
  await waitFor(ctx, 'topic gone after deleteTopics', async () => ((await admin.listTopics()).includes(topic) ? 'still listed' : undefined))
}

// ---- runner ----

const SCENARIOS = [
  { name: 'kafkajs-produce-idempotent', timeout: 60000, run: produceScenario('none', true) },
  { name: 'kafkajs-produce-gzip', timeout: 60000, run: produceScenario('gzip', false) },
  { name: 'kafkajs-produce-gzip-idempotent', timeout: 60000, run: produceScenario('gzip', true) },
  { name: 'kafkajs-group', timeout: 90000, run: groupScenario },
  { name: 'kafkajs-admin', timeout: 90000, run: adminScenario },
]

async function runOne(s, args) {
  const ctx = { started: Date.now(), name: s.name, bootstrap: args.bootstrap, broker: args.broker, deadline: Date.now() + s.timeout, cleanup: [] }
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${s.timeout / 1000}s`)), s.timeout + 5000)
  })
  try {
    await Promise.race([s.run(ctx), timeout])
    return null
  } catch (e) {
    return e
  } finally {
    clearTimeout(timer)
    for (const c of ctx.cleanup.reverse()) {
      await Promise.race([Promise.resolve().then(c).catch(() => {}), sleep(5000)])
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  let chosen = SCENARIOS
  if (args.scenarios && args.scenarios.trim()) {
    chosen = []
    for (const want of args.scenarios.split(',').map(x => x.trim())) {
      const found = SCENARIOS.filter(s => s.name === want || (want.endsWith('*') && s.name.startsWith(want.slice(0, -1))))
      if (!found.length) {
        console.error(`unknown scenario ${want}; known: ${SCENARIOS.map(s => s.name).join(',')}`)
        process.exit(2)
      }
      chosen.push(...found)
    }
  }
  let failed = 0
  for (const s of chosen) {
    const start = Date.now()
    const err = await runOne(s, args)
    process.stderr.write(`[${s.name}] took ${((Date.now() - start) / 1000).toFixed(1)}s\n`)
    if (err) {
      failed++
      process.stderr.write(`[${s.name}] ${err.stack || err}\n`)
      const why = `${err.name && err.name !== 'Error' ? err.name + ': ' : ''}${err.message || err}`.replace(/\r?\n/g, ' | ')
      process.stdout.write(`FAIL ${s.name}: ${why}\n`)
    } else {
      process.stdout.write(`PASS ${s.name}\n`)
    }
  }
  process.exit(failed ? 1 : 0)
}

process.on('unhandledRejection', e => process.stderr.write(`unhandled rejection: ${(e && e.stack) || e}\n`))
main()
