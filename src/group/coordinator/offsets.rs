//! Committed offsets: what a commit needs, applying and removing commits, expiry, and
//! reading them back from `__consumer_offsets`.
use super::*;

impl GroupCoordinator {
    /// Checks that a commit may be made: generation -1 with no member is a standalone
    /// commit, allowed when the group has no members.
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let Some(group) = self.groups.get(group_id) else {
            return if generation < 0 { Ok(()) } else { Err(GroupError::IllegalGeneration) };
        };
        if generation < 0 && member_id.is_empty() {
            // An admin or a consumer outside group management: allowed only while the group
            // has no members; otherwise UNKNOWN_MEMBER_ID, as Kafka's ClassicGroup answers.
            return if group.members.is_empty() { Ok(()) } else { Err(GroupError::UnknownMemberId) };
        }
        Self::check_member(group, member_id, instance_id, generation)?;
        // As in Kafka: members of the current generation may commit while the group
        // prepares a rebalance (committing on revoke), not while assignments are pending.
        match group.state {
            GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Records committed offsets (after they were persisted).
    pub fn apply_commit(&mut self, group_id: &str, offsets: Vec<((String, i32), CommittedOffset)>) {
        let entry = self.offsets.entry(group_id.to_string()).or_default();
        for (tp, o) in offsets {
            entry.insert(tp, o);
        }
    }

    pub fn committed(&self, group_id: &str) -> Option<&BTreeMap<(String, i32), CommittedOffset>> {
        self.offsets.get(group_id)
    }

    /// Removes committed offsets; returns the ones that existed.
    pub fn remove_offsets(&mut self, group_id: &str, tps: &[(String, i32)]) -> Vec<(String, i32)> {
        let mut removed = Vec::new();
        if let Some(map) = self.offsets.get_mut(group_id) {
            for tp in tps {
                if map.remove(tp).is_some() {
                    removed.push(tp.clone());
                }
            }
            if map.is_empty() {
                self.offsets.remove(group_id);
            }
        }
        removed
    }

    /// Deletes a group that has no members: its metadata and all its offsets. Returns the
    /// partitions whose offsets were removed.
    pub fn delete_group(&mut self, group_id: &str) -> Result<Vec<(String, i32)>, GroupError> {
        let has_group = self.groups.contains_key(group_id);
        let has_offsets = self.offsets.contains_key(group_id);
        if !has_group && !has_offsets {
            return Err(GroupError::GroupIdNotFound);
        }
        if self.groups.get(group_id).is_some_and(|g| !g.members.is_empty()) {
            return Err(GroupError::NonEmptyGroup);
        }
        self.groups.remove(group_id);
        Ok(self.offsets.remove(group_id).map(|m| m.into_keys().collect()).unwrap_or_default())
    }

    /// Offsets of empty groups older than the retention, to be deleted (Kafka's
    /// `offsets.retention.minutes`: counted from the commit, for groups without members).
    pub fn expired_offsets(&self, retention_ms: i64, wall_now_ms: i64) -> Vec<(String, Vec<(String, i32)>)> {
        let mut out = Vec::new();
        for (group_id, map) in &self.offsets {
            if self.groups.get(group_id).is_some_and(|g| !g.members.is_empty()) {
                continue;
            }
            let old: Vec<(String, i32)> = map
                .iter()
                .filter(|(_, o)| o.commit_timestamp_ms + retention_ms <= wall_now_ms)
                .map(|(tp, _)| tp.clone())
                .collect();
            if !old.is_empty() {
                out.push((group_id.clone(), old));
            }
        }
        out
    }

    /// Whether a member of a non-empty group subscribes to `topic` (consumer protocol).
    pub fn subscribed_to(&self, group_id: &str, topic: &str) -> bool {
        let Some(g) = self.groups.get(group_id) else { return false };
        if g.members.is_empty() {
            return false;
        }
        let protocol = g.protocol_name.clone().unwrap_or_default();
        g.members.iter().any(|m| subscription_topics(&m.metadata_for(&protocol)).iter().any(|t| t == topic))
    }

    /// Restores a group from its persisted metadata (at load). Members get a fresh session.
    pub fn restore_group(&mut self, group: Group, now: Now) {
        let mut group = group;
        for m in &mut group.members {
            m.last_heartbeat = now;
        }
        if group.members.is_empty() {
            group.state = GroupState::Empty;
        }
        self.groups.insert(group.group_id.clone(), group);
    }

    pub fn forget_group(&mut self, group_id: &str) {
        self.groups.remove(group_id);
    }

    /// Restores (or, with `None`, removes) one committed offset at load.
    pub fn restore_offset(&mut self, group_id: &str, tp: (String, i32), o: Option<CommittedOffset>) {
        match o {
            Some(o) => {
                self.offsets.entry(group_id.to_string()).or_default().insert(tp, o);
            }
            None => {
                self.remove_offsets(group_id, &[tp]);
            }
        }
    }
}
