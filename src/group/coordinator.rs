//! The classic consumer-group protocol as a state machine: no I/O, no clock of its own.
//! Callers pass `now` (milliseconds on a monotonic clock) and get back outputs: responses
//! to deliver (possibly to requests that arrived earlier, such as JoinGroups parked until
//! the rebalance completes) and groups whose metadata must be persisted.
//!
//! States follow Kafka's GroupCoordinator: Empty → PreparingRebalance → CompletingRebalance
//! → Stable, and back to PreparingRebalance whenever membership or subscriptions change.
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

pub type ReqId = u64;
pub type Now = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// Why a group operation was refused (the handlers map these to Kafka error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("rebalance in progress")]
    RebalanceInProgress,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    #[error("member id required")]
    MemberIdRequired,
    #[error("fenced instance id")]
    FencedInstanceId,
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    #[error("group is not empty")]
    NonEmptyGroup,
    #[error("group id not found")]
    GroupIdNotFound,
    #[error("group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("group is full")]
    GroupMaxSizeReached,
    /// The change could not be persisted to `__consumer_offsets`.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, instance id, metadata of the chosen protocol).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResponse {
    pub fn error(e: GroupError, member_id: &str) -> JoinResponse {
        JoinResponse {
            error: Some(e),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(e: GroupError) -> SyncResponse {
        SyncResponse { error: Some(e), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// What the driver must do after an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Join {
        req: ReqId,
        resp: JoinResponse,
    },
    Sync {
        req: ReqId,
        resp: SyncResponse,
    },
    /// The group's membership/assignment changed: persist its metadata (or a tombstone if
    /// the group no longer exists).
    PersistGroup {
        group_id: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heartbeat: Now,
    awaiting_join: Option<ReqId>,
    awaiting_sync: Option<ReqId>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// In join order (the first becomes leader when there is none).
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined: id → deadline.
    pending_members: HashMap<String, Now>,
    rebalance_deadline: Now,
    /// `group.initial.rebalance.delay.ms`: the first rebalance waits for more members.
    delay_until: Now,
    /// The initial delay in force for this rebalance (0: none), and how much of the
    /// rebalance timeout is left to extend it by: as Kafka's InitialDelayedJoin, a delay
    /// that expires after a new member joined the first generation waits once more.
    initial_delay_ms: u64,
    delay_remaining_ms: u64,
    new_member_added: bool,
    pub state_since: Now,
}

impl Group {
    fn new(group_id: &str, now: Now) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: 0,
            delay_until: 0,
            initial_delay_ms: 0,
            delay_remaining_ms: 0,
            new_member_added: false,
            state_since: now,
        }
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == id)
    }
    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == id)
    }
    fn member_by_instance(&self, instance: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// The protocol every member supports with the most first-choice votes (Kafka's rule).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.iter().all(|m| m.protocols.iter().any(|(p, _)| p == *n)))
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for c in candidates {
            let votes = self
                .members
                .iter()
                .filter(|m| {
                    m.protocols.iter().find(|(p, _)| self.protocol_supported_by_all(p)).map(|(p, _)| p) == Some(c)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((c, votes));
            }
        }
        best.map(|(c, _)| c.clone())
    }

    fn protocol_supported_by_all(&self, p: &str) -> bool {
        self.members.iter().all(|m| m.protocols.iter().any(|(q, _)| q == p))
    }

    /// Whether a joining member's protocols are compatible with the group's.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(p, _)| self.protocol_supported_by_all(p))
    }
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// The groups whose coordinator lives on one shard, and their committed offsets.
#[derive(Default)]
pub struct GroupCoordinator {
    groups: BTreeMap<String, Group>,
    offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    pub group_max_size: usize,
    pub session_timeout_min_ms: u64,
    pub session_timeout_max_ms: u64,
    /// `group.initial.rebalance.delay.ms`: how long a rebalance of an empty group waits
    /// for more members before completing.
    pub initial_rebalance_delay_ms: u64,
}

impl GroupCoordinator {
    pub fn new() -> GroupCoordinator {
        GroupCoordinator {
            group_max_size: usize::MAX,
            session_timeout_min_ms: 6_000,
            session_timeout_max_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            ..Default::default()
        }
    }

    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Groups known here: those with members and those with only committed offsets.
    pub fn group_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.groups.keys().cloned().collect();
        for g in self.offsets.keys() {
            if !self.groups.contains_key(g) {
                ids.push(g.clone());
            }
        }
        ids.sort();
        ids
    }

    fn new_member_id(client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    pub fn join(&mut self, req: ReqId, j: JoinRequest, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let reply = |out: &mut Vec<Output>, resp| out.push(Output::Join { req, resp });
        if j.group_id.is_empty() {
            reply(&mut out, JoinResponse::error(GroupError::InvalidGroupId, &j.member_id));
            return out;
        }
        if j.session_timeout_ms < self.session_timeout_min_ms || j.session_timeout_ms > self.session_timeout_max_ms {
            reply(&mut out, JoinResponse::error(GroupError::InvalidSessionTimeout, &j.member_id));
            return out;
        }
        let group_max_size = self.group_max_size;
        let new_id = if j.member_id.is_empty() { Some(Self::new_member_id(&j.client_id)) } else { None };
        let group = self.groups.entry(j.group_id.clone()).or_insert_with(|| Group::new(&j.group_id, now));
        if !group.supports(&j.protocol_type, &j.protocols) {
            reply(&mut out, JoinResponse::error(GroupError::InconsistentGroupProtocol, &j.member_id));
            return out;
        }
        // Static membership: a known instance id takes over its old member id.
        if let Some(instance) = &j.instance_id {
            if let Some(existing) = group.member_by_instance(instance).map(|m| m.member_id.clone()) {
                if !j.member_id.is_empty() && j.member_id != existing {
                    reply(&mut out, JoinResponse::error(GroupError::FencedInstanceId, &j.member_id));
                    return out;
                }
                let member_id =
                    if j.member_id.is_empty() { new_id.clone().expect("empty id") } else { existing.clone() };
                let protocols_changed = group.member(&existing).is_some_and(|m| m.protocols != j.protocols);
                // Replace the old member id (fencing the previous holder of the instance).
                if let Some(m) = group.member_mut(&existing) {
                    if let Some(old_req) = m.awaiting_join.take() {
                        out.push(Output::Join {
                            req: old_req,
                            resp: JoinResponse::error(GroupError::FencedInstanceId, &existing),
                        });
                    }
                    if let Some(old_req) = m.awaiting_sync.take() {
                        out.push(Output::Sync {
                            req: old_req,
                            resp: SyncResponse::error(GroupError::FencedInstanceId),
                        });
                    }
                    m.member_id = member_id.clone();
                    m.protocols = j.protocols.clone();
                    m.session_timeout_ms = j.session_timeout_ms;
                    m.rebalance_timeout_ms = j.rebalance_timeout_ms;
                    m.last_heartbeat = now;
                }
                if group.leader.as_deref() == Some(existing.as_str()) {
                    group.leader = Some(member_id.clone());
                }
                match group.state {
                    GroupState::Stable if !protocols_changed => {
                        // Rejoin without a rebalance: same generation, stored assignment.
                        out.push(Output::PersistGroup { group_id: group.group_id.clone() });
                        let resp = JoinResponse {
                            error: None,
                            generation: group.generation,
                            protocol_type: group.protocol_type.clone(),
                            protocol_name: group.protocol_name.clone(),
                            leader: group.leader.clone().unwrap_or_default(),
                            member_id,
                            members: Vec::new(),
                        };
                        reply(&mut out, resp);
                        return out;
                    }
                    GroupState::PreparingRebalance => {
                        group.member_mut(&member_id).expect("present").awaiting_join = Some(req);
                        Self::maybe_complete_join(group, now, &mut out);
                        return out;
                    }
                    _ => {
                        group.member_mut(&member_id).expect("present").awaiting_join = Some(req);
                        Self::prepare_rebalance(group, now, 0, &mut out);
                        Self::maybe_complete_join(group, now, &mut out);
                        return out;
                    }
                }
            }
        }
        let member_id = match (&new_id, j.member_id.is_empty()) {
            (Some(id), true) => {
                if j.require_known_member_id && j.instance_id.is_none() {
                    group.pending_members.insert(id.clone(), now + j.session_timeout_ms);
                    reply(&mut out, JoinResponse::error(GroupError::MemberIdRequired, id));
                    return out;
                }
                id.clone()
            }
            _ => {
                let known = group.member(&j.member_id).is_some() || group.pending_members.contains_key(&j.member_id);
                if !known {
                    reply(&mut out, JoinResponse::error(GroupError::UnknownMemberId, &j.member_id));
                    return out;
                }
                j.member_id.clone()
            }
        };
        group.pending_members.remove(&member_id);
        if group.member(&member_id).is_none() {
            if group.members.len() >= group_max_size {
                reply(&mut out, JoinResponse::error(GroupError::GroupMaxSizeReached, &member_id));
                return out;
            }
            if group.members.is_empty() {
                group.protocol_type = Some(j.protocol_type.clone());
            }
            group.members.push(Member {
                member_id: member_id.clone(),
                instance_id: j.instance_id.clone(),
                client_id: j.client_id.clone(),
                client_host: j.client_host.clone(),
                session_timeout_ms: j.session_timeout_ms,
                rebalance_timeout_ms: j.rebalance_timeout_ms,
                protocols: j.protocols.clone(),
                assignment: Bytes::new(),
                last_heartbeat: now,
                awaiting_join: Some(req),
                awaiting_sync: None,
            });
            let delay = if group.state == GroupState::Empty { self.initial_rebalance_delay_ms } else { 0 };
            if group.state == GroupState::PreparingRebalance && group.generation == 0 {
                group.new_member_added = true;
            }
            Self::prepare_rebalance(group, now, delay, &mut out);
            Self::maybe_complete_join(group, now, &mut out);
            return out;
        }
        // A known member rejoining.
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        let m = group.member_mut(&member_id).expect("present");
        let changed = m.protocols != j.protocols;
        m.protocols = j.protocols.clone();
        m.session_timeout_ms = j.session_timeout_ms;
        m.rebalance_timeout_ms = j.rebalance_timeout_ms;
        m.last_heartbeat = now;
        if let Some(old) = m.awaiting_join.replace(req) {
            out.push(Output::Join { req: old, resp: JoinResponse::error(GroupError::RebalanceInProgress, &member_id) });
        }
        match group.state {
            GroupState::PreparingRebalance => {}
            GroupState::CompletingRebalance | GroupState::Stable
                if !changed && !(is_leader && group.state == GroupState::Stable) =>
            {
                // The member missed the join response: give it again, no rebalance.
                let m = group.member_mut(&member_id).expect("present");
                m.awaiting_join = None;
                let resp = Self::join_response(group, &member_id);
                reply(&mut out, resp);
                return out;
            }
            _ => Self::prepare_rebalance(group, now, 0, &mut out),
        }
        Self::maybe_complete_join(group, now, &mut out);
        out
    }

    fn join_response(group: &Group, member_id: &str) -> JoinResponse {
        let leader = group.leader.clone().unwrap_or_default();
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            group
                .members
                .iter()
                .map(|m| (m.member_id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn prepare_rebalance(group: &mut Group, now: Now, delay_ms: u64, out: &mut Vec<Output>) {
        if group.state == GroupState::CompletingRebalance {
            // Members waiting for their assignment must rejoin.
            for m in &mut group.members {
                if let Some(req) = m.awaiting_sync.take() {
                    out.push(Output::Sync { req, resp: SyncResponse::error(GroupError::RebalanceInProgress) });
                }
            }
        }
        if group.state != GroupState::PreparingRebalance {
            let timeout = group.members.iter().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
            group.rebalance_deadline = now + timeout.max(delay_ms);
            group.delay_until = now + delay_ms;
            group.initial_delay_ms = delay_ms;
            group.delay_remaining_ms = timeout.saturating_sub(delay_ms);
            group.new_member_added = false;
            group.state = GroupState::PreparingRebalance;
            group.state_since = now;
        }
    }

    /// Completes the join phase once every member has rejoined (or at the deadline, after
    /// dropping those that did not).
    fn maybe_complete_join(group: &mut Group, now: Now, out: &mut Vec<Output>) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = group.members.iter().all(|m| m.awaiting_join.is_some()) && group.pending_members.is_empty();
        let delaying = now < group.delay_until;
        if !delaying && group.new_member_added && group.initial_delay_ms > 0 && group.delay_remaining_ms > 0 {
            // Members are still arriving: wait another delay, within the rebalance timeout.
            let delay = group.initial_delay_ms.min(group.delay_remaining_ms);
            group.delay_remaining_ms -= delay;
            group.delay_until = now + delay;
            group.rebalance_deadline = group.rebalance_deadline.max(group.delay_until);
            group.new_member_added = false;
            return;
        }
        if (!all_joined || delaying) && now < group.rebalance_deadline {
            return;
        }
        // Drop the members that did not rejoin in time.
        group.members.retain(|m| m.awaiting_join.is_some());
        group.pending_members.clear();
        if group.leader.as_ref().is_some_and(|l| group.member(l).is_none()) {
            group.leader = None;
        }
        group.generation += 1;
        group.state_since = now;
        if group.members.is_empty() {
            tracing::info!(group = %group.group_id, generation = group.generation, members = 0, "group rebalanced: empty");
            group.state = GroupState::Empty;
            // Kafka keeps the protocol type of an empty group (ListGroups shows it).
            group.protocol_name = None;
            group.leader = None;
            out.push(Output::PersistGroup { group_id: group.group_id.clone() });
            return;
        }
        if group.leader.is_none() {
            group.leader = Some(group.members[0].member_id.clone());
        }
        group.protocol_name = group.select_protocol();
        group.state = GroupState::CompletingRebalance;
        tracing::info!(
            group = %group.group_id,
            generation = group.generation,
            members = group.members.len(),
            protocol = group.protocol_name.as_deref().unwrap_or(""),
            leader = group.leader.as_deref().unwrap_or(""),
            "group rebalanced"
        );
        for m in &mut group.members {
            m.assignment = Bytes::new();
        }
        let ids: Vec<String> = group.members.iter().map(|m| m.member_id.clone()).collect();
        for id in ids {
            let resp = Self::join_response(group, &id);
            let m = group.member_mut(&id).expect("present");
            m.last_heartbeat = now;
            if let Some(req) = m.awaiting_join.take() {
                out.push(Output::Join { req, resp });
            }
        }
    }

    /// Checks member id, instance id and generation of a request from a group member.
    fn check_member(
        group: &Group,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            if let Some(m) = group.member_by_instance(instance) {
                if m.member_id != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
            }
        }
        if group.member(member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(&mut self, req: ReqId, s: SyncRequest, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(group) = self.groups.get_mut(&s.group_id) else {
            out.push(Output::Sync { req, resp: SyncResponse::error(GroupError::UnknownMemberId) });
            return out;
        };
        if let Err(e) = Self::check_member(group, &s.member_id, s.instance_id.as_deref(), s.generation) {
            out.push(Output::Sync { req, resp: SyncResponse::error(e) });
            return out;
        }
        match group.state {
            GroupState::Empty => out.push(Output::Sync { req, resp: SyncResponse::error(GroupError::UnknownMemberId) }),
            GroupState::PreparingRebalance => {
                out.push(Output::Sync { req, resp: SyncResponse::error(GroupError::RebalanceInProgress) })
            }
            GroupState::CompletingRebalance => {
                let m = group.member_mut(&s.member_id).expect("checked");
                m.last_heartbeat = now;
                if let Some(old) = m.awaiting_sync.replace(req) {
                    out.push(Output::Sync { req: old, resp: SyncResponse::error(GroupError::RebalanceInProgress) });
                }
                if group.leader.as_deref() == Some(s.member_id.as_str()) {
                    let assignments: HashMap<String, Bytes> = s.assignments.into_iter().collect();
                    for m in &mut group.members {
                        m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    group.state_since = now;
                    out.push(Output::PersistGroup { group_id: group.group_id.clone() });
                    for m in &mut group.members {
                        if let Some(r) = m.awaiting_sync.take() {
                            out.push(Output::Sync {
                                req: r,
                                resp: SyncResponse {
                                    error: None,
                                    protocol_type: group.protocol_type.clone(),
                                    protocol_name: group.protocol_name.clone(),
                                    assignment: m.assignment.clone(),
                                },
                            });
                        }
                    }
                }
            }
            GroupState::Stable => {
                let (protocol_type, protocol_name) = (group.protocol_type.clone(), group.protocol_name.clone());
                let m = group.member_mut(&s.member_id).expect("checked");
                m.last_heartbeat = now;
                let resp = SyncResponse { error: None, protocol_type, protocol_name, assignment: m.assignment.clone() };
                out.push(Output::Sync { req, resp });
            }
        }
        out
    }

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Now,
    ) -> Result<(), GroupError> {
        let group = self.groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
        Self::check_member(group, member_id, instance_id, generation).or_else(|e| {
            // A member of the previous generation learns of the rebalance.
            if e == GroupError::IllegalGeneration && group.state == GroupState::PreparingRebalance {
                Err(GroupError::RebalanceInProgress)
            } else {
                Err(e)
            }
        })?;
        group.member_mut(member_id).expect("checked").last_heartbeat = now;
        match group.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Empty => Err(GroupError::UnknownMemberId),
            _ => Ok(()),
        }
    }

    /// Removes members; returns one result per member and the outputs.
    pub fn leave(
        &mut self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: Now,
    ) -> (Vec<Result<(), GroupError>>, Vec<Output>) {
        let mut out = Vec::new();
        let Some(group) = self.groups.get_mut(group_id) else {
            return (members.iter().map(|_| Err(GroupError::UnknownMemberId)).collect(), out);
        };
        let mut results = Vec::with_capacity(members.len());
        let mut removed_any = false;
        for (member_id, instance_id) in members {
            let target = match instance_id {
                Some(instance) => match group.member_by_instance(instance) {
                    Some(m) if member_id.is_empty() || &m.member_id == member_id => Some(m.member_id.clone()),
                    Some(_) => {
                        results.push(Err(GroupError::FencedInstanceId));
                        continue;
                    }
                    None => None,
                },
                None => group.member(member_id).map(|m| m.member_id.clone()),
            };
            let Some(target) = target else {
                if group.pending_members.remove(member_id).is_some() {
                    results.push(Ok(()));
                } else {
                    results.push(Err(GroupError::UnknownMemberId));
                }
                continue;
            };
            Self::remove_member(group, &target, &mut out);
            removed_any = true;
            results.push(Ok(()));
        }
        if removed_any {
            Self::after_removal(group, now, &mut out);
        }
        (results, out)
    }

    fn remove_member(group: &mut Group, member_id: &str, out: &mut Vec<Output>) {
        if let Some(pos) = group.members.iter().position(|m| m.member_id == member_id) {
            let m = group.members.remove(pos);
            if let Some(req) = m.awaiting_join {
                out.push(Output::Join { req, resp: JoinResponse::error(GroupError::UnknownMemberId, member_id) });
            }
            if let Some(req) = m.awaiting_sync {
                out.push(Output::Sync { req, resp: SyncResponse::error(GroupError::UnknownMemberId) });
            }
        }
        if group.leader.as_deref() == Some(member_id) {
            group.leader = None;
        }
    }

    fn after_removal(group: &mut Group, now: Now, out: &mut Vec<Output>) {
        match group.state {
            GroupState::Empty => {}
            GroupState::PreparingRebalance => Self::maybe_complete_join(group, now, out),
            _ if group.members.is_empty() => {
                group.state = GroupState::Empty;
                group.generation += 1;
                group.state_since = now;
                group.protocol_name = None;
                out.push(Output::PersistGroup { group_id: group.group_id.clone() });
            }
            _ => {
                if group.leader.is_none() {
                    group.leader = group.members.first().map(|m| m.member_id.clone());
                }
                Self::prepare_rebalance(group, now, 0, out);
                Self::maybe_complete_join(group, now, out);
            }
        }
    }

    /// Expires members whose session ran out and completes rebalances whose deadline passed.
    pub fn tick(&mut self, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        for group in self.groups.values_mut() {
            group.pending_members.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|m| {
                    // A member parked in JoinGroup is waiting on us, not the other way round.
                    m.awaiting_join.is_none() && m.last_heartbeat + m.session_timeout_ms <= now
                })
                .map(|m| m.member_id.clone())
                .collect();
            for id in &expired {
                tracing::info!(group = %group.group_id, member = %id, "member session expired");
                Self::remove_member(group, id, &mut out);
            }
            if !expired.is_empty() {
                Self::after_removal(group, now, &mut out);
            }
            if group.state == GroupState::PreparingRebalance {
                Self::maybe_complete_join(group, now, &mut out);
            }
        }
        out
    }

    /// The earliest moment `tick` has something to do.
    pub fn next_deadline(&self) -> Option<Now> {
        let mut best: Option<Now> = None;
        let mut consider = |t: Now| best = Some(best.map_or(t, |b| b.min(t)));
        for g in self.groups.values() {
            if g.state == GroupState::PreparingRebalance {
                consider(g.rebalance_deadline);
                if g.delay_until > 0 {
                    consider(g.delay_until);
                }
            }
            for m in &g.members {
                if m.awaiting_join.is_none() {
                    consider(m.last_heartbeat + m.session_timeout_ms);
                }
            }
            for d in g.pending_members.values() {
                consider(*d);
            }
        }
        best
    }
}

mod offsets;
mod restore;
pub use restore::{restored_group, restored_member, subscription_topics};

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
