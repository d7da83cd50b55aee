//! Whole rebalance sequences played against the coordinator, without sockets or sleeps.
use super::*;

fn join_req(member: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member.into(),
        instance_id: instance.map(String::from),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
        require_known_member_id: true,
    }
}

fn joins(out: &[Output]) -> Vec<(ReqId, JoinResponse)> {
    out.iter()
        .filter_map(|o| if let Output::Join { req, resp } = o { Some((*req, resp.clone())) } else { None })
        .collect()
}
fn syncs(out: &[Output]) -> Vec<(ReqId, SyncResponse)> {
    out.iter()
        .filter_map(|o| if let Output::Sync { req, resp } = o { Some((*req, resp.clone())) } else { None })
        .collect()
}

/// MEMBER_ID_REQUIRED round trip, then the real join; returns the member id.
fn first_join(c: &mut GroupCoordinator, req: ReqId, now: Now) -> (String, Vec<Output>) {
    let out = c.join(req, join_req("", None), now);
    let (_, resp) = joins(&out).pop().unwrap();
    assert_eq!(resp.error, Some(GroupError::MemberIdRequired));
    let id = resp.member_id;
    (id.clone(), c.join(req + 1, join_req(&id, None), now))
}

#[test]
fn two_members_join_sync_heartbeat_and_leader_leaves() {
    let mut c = GroupCoordinator::new();
    let (a, out) = first_join(&mut c, 1, 0);
    let j = joins(&out);
    assert_eq!(j.len(), 1, "a lone member completes the join at once");
    assert_eq!(j[0].1.generation, 1);
    assert_eq!(j[0].1.leader, a);
    let out = c.sync(
        3,
        SyncRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            instance_id: None,
            generation: 1,
            assignments: vec![(a.clone(), Bytes::from_static(b"all"))],
        },
        1,
    );
    assert_eq!(syncs(&out)[0].1.assignment, Bytes::from_static(b"all"));
    assert_eq!(c.group("g").unwrap().state, GroupState::Stable);

    // B joins: the group rebalances; A learns it from its heartbeat and rejoins.
    let (b, out) = first_join(&mut c, 10, 100);
    assert!(joins(&out).is_empty(), "B waits for A to rejoin");
    assert_eq!(c.heartbeat("g", &a, None, 1, 200), Err(GroupError::RebalanceInProgress));
    let out = c.join(20, join_req(&a, None), 300);
    let j = joins(&out);
    assert_eq!(j.len(), 2);
    for (_, r) in &j {
        assert_eq!(r.generation, 2);
        assert_eq!(r.leader, a);
    }
    let leader_resp = j.iter().find(|(_, r)| r.member_id == a).unwrap();
    assert_eq!(leader_resp.1.members.len(), 2, "the leader gets every member's metadata");
    // B syncs first and waits; the leader's sync releases both.
    assert!(syncs(&c.sync(
        21,
        SyncRequest {
            group_id: "g".into(),
            member_id: b.clone(),
            instance_id: None,
            generation: 2,
            assignments: vec![]
        },
        300
    ))
    .is_empty());
    let out = c.sync(
        22,
        SyncRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            instance_id: None,
            generation: 2,
            assignments: vec![(a.clone(), Bytes::from_static(b"p0")), (b.clone(), Bytes::from_static(b"p1"))],
        },
        300,
    );
    let s = syncs(&out);
    assert_eq!(s.len(), 2);
    assert_eq!(s.iter().find(|(r, _)| *r == 21).unwrap().1.assignment, Bytes::from_static(b"p1"));
    assert!(c.heartbeat("g", &b, None, 2, 400).is_ok());
    assert_eq!(c.heartbeat("g", &b, None, 1, 400), Err(GroupError::IllegalGeneration));

    // The leader leaves: B is alone, rejoins and becomes leader.
    let (res, _) = c.leave("g", &[(a.clone(), None)], 500);
    assert_eq!(res, vec![Ok(())]);
    assert_eq!(c.heartbeat("g", &b, None, 2, 600), Err(GroupError::RebalanceInProgress));
    let out = c.join(30, join_req(&b, None), 700);
    let j = joins(&out);
    assert_eq!(j[0].1.generation, 3);
    assert_eq!(j[0].1.leader, b);
}

#[test]
fn a_member_that_stops_heartbeating_expires() {
    let mut c = GroupCoordinator::new();
    let (a, _) = first_join(&mut c, 1, 0);
    c.sync(
        3,
        SyncRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            instance_id: None,
            generation: 1,
            assignments: vec![],
        },
        0,
    );
    let (b, _) = first_join(&mut c, 10, 0);
    let out = c.join(20, join_req(&a, None), 0);
    assert_eq!(joins(&out).len(), 2);
    for (r, m) in [(21, &a), (22, &b)] {
        c.sync(
            r,
            SyncRequest {
                group_id: "g".into(),
                member_id: m.clone(),
                instance_id: None,
                generation: 2,
                assignments: vec![],
            },
            0,
        );
    }
    assert_eq!(c.group("g").unwrap().state, GroupState::Stable);
    // A keeps heartbeating, B goes silent past its 10 s session.
    for t in (1000..=9000).step_by(1000) {
        assert!(c.heartbeat("g", &a, None, 2, t).is_ok());
        assert!(c.tick(t).is_empty());
    }
    assert!(c.next_deadline().unwrap() <= 10_000);
    c.tick(10_000);
    let g = c.group("g").unwrap();
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let out = c.join(30, join_req(&a, None), 10_500);
    assert_eq!(joins(&out)[0].1.generation, 3);
}

#[test]
fn static_member_bounces_without_rebalance_and_duplicate_is_fenced() {
    let mut c = GroupCoordinator::new();
    let out = c.join(1, join_req("", Some("inst-1")), 0);
    let (_, r) = joins(&out).pop().unwrap();
    assert!(r.error.is_none(), "static members skip MEMBER_ID_REQUIRED");
    let old = r.member_id.clone();
    c.sync(
        2,
        SyncRequest {
            group_id: "g".into(),
            member_id: old.clone(),
            instance_id: Some("inst-1".into()),
            generation: 1,
            assignments: vec![(old.clone(), Bytes::from_static(b"mine"))],
        },
        0,
    );
    // Restart: joins with an empty member id and the same instance id.
    let out = c.join(3, join_req("", Some("inst-1")), 1000);
    let (_, r) = joins(&out).pop().unwrap();
    assert!(r.error.is_none());
    assert_eq!(r.generation, 1, "no rebalance");
    let new = r.member_id.clone();
    assert_ne!(new, old);
    let out = c.sync(
        4,
        SyncRequest {
            group_id: "g".into(),
            member_id: new.clone(),
            instance_id: Some("inst-1".into()),
            generation: 1,
            assignments: vec![],
        },
        1000,
    );
    assert_eq!(syncs(&out)[0].1.assignment, Bytes::from_static(b"mine"), "the stored assignment comes back");
    // The old incarnation is fenced.
    assert_eq!(c.heartbeat("g", &old, Some("inst-1"), 1, 1100), Err(GroupError::FencedInstanceId));
    assert!(c.heartbeat("g", &new, Some("inst-1"), 1, 1100).is_ok());
}

#[test]
fn initial_rebalance_delay_waits_then_completes_on_tick() {
    let mut c = GroupCoordinator::new();
    c.initial_rebalance_delay_ms = 3000;
    let (_a, out) = first_join(&mut c, 1, 0);
    assert!(joins(&out).is_empty(), "the first rebalance waits for more members");
    let (_b, out) = first_join(&mut c, 10, 1000);
    assert!(joins(&out).is_empty());
    assert!(c.tick(2999).is_empty());
    assert_eq!(c.next_deadline(), Some(3000));
    // b joined during the delay: as Kafka's InitialDelayedJoin, wait one delay more.
    assert!(c.tick(3000).is_empty(), "a member joined during the delay: it is extended");
    assert_eq!(c.next_deadline(), Some(6000));
    assert!(c.tick(5999).is_empty());
    let out = c.tick(6000);
    let j = joins(&out);
    assert_eq!(j.len(), 2, "both members are in the first generation");
    assert!(j.iter().all(|(_, r)| r.generation == 1));
}

#[test]
fn initial_rebalance_delay_without_new_members_is_not_extended() {
    let mut c = GroupCoordinator::new();
    c.initial_rebalance_delay_ms = 3000;
    let (_a, out) = first_join(&mut c, 1, 0);
    assert!(joins(&out).is_empty());
    let out = c.tick(3000);
    assert_eq!(joins(&out).len(), 1, "nobody else came: the group forms after one delay");
}

#[test]
fn commits_are_checked_against_generation_and_membership() {
    let mut c = GroupCoordinator::new();
    assert!(c.validate_commit("solo", "", None, -1).is_ok(), "standalone commit");
    let (a, _) = first_join(&mut c, 1, 0);
    assert_eq!(c.validate_commit("g", &a, None, 1), Err(GroupError::RebalanceInProgress), "awaiting sync");
    // While a rebalance is being prepared, the current generation may still commit.
    {
        let mut c2 = GroupCoordinator::new();
        let (x, _) = first_join(&mut c2, 100, 0);
        c2.sync(
            102,
            SyncRequest {
                group_id: "g".into(),
                member_id: x.clone(),
                instance_id: None,
                generation: 1,
                assignments: vec![],
            },
            0,
        );
        let _ = first_join(&mut c2, 110, 10);
        assert_eq!(c2.group("g").unwrap().state, GroupState::PreparingRebalance);
        assert!(c2.validate_commit("g", &x, None, 1).is_ok(), "commit on revoke");
    }
    c.sync(
        3,
        SyncRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            instance_id: None,
            generation: 1,
            assignments: vec![],
        },
        0,
    );
    assert!(c.validate_commit("g", &a, None, 1).is_ok());
    assert_eq!(c.validate_commit("g", &a, None, 0), Err(GroupError::IllegalGeneration));
    assert_eq!(c.validate_commit("g", "nobody", None, 1), Err(GroupError::UnknownMemberId));
    // An admin commit (AlterConsumerGroupOffsets) to a group with members: Kafka says UNKNOWN_MEMBER_ID.
    assert_eq!(c.validate_commit("g", "", None, -1), Err(GroupError::UnknownMemberId));
    c.apply_commit(
        "g",
        vec![(
            ("t".into(), 0),
            CommittedOffset { offset: 5, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: 0 },
        )],
    );
    assert_eq!(c.committed("g").unwrap()[&("t".to_string(), 0)].offset, 5);
    assert_eq!(c.delete_group("g"), Err(GroupError::NonEmptyGroup));
    c.leave("g", &[(a, None)], 10);
    assert_eq!(c.expired_offsets(1000, 500), vec![]);
    assert_eq!(c.expired_offsets(1000, 1000).len(), 1);
    assert_eq!(c.delete_group("g"), Ok(vec![("t".to_string(), 0)]));
    assert_eq!(c.delete_group("g"), Err(GroupError::GroupIdNotFound));
}
