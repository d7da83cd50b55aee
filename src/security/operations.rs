//! Kafka's ACL vocabulary (operations, resource types) and the "authorized operations" bit
//! fields that Metadata (v8+), DescribeCluster and DescribeGroups (v3+) return when the
//! client asks for them (KIP-430).
use serde::{Deserialize, Serialize};

/// Kafka's `AclOperation` codes (also the bit positions in the authorized-operations field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum AclOperation {
    /// Filters only: any operation.
    Any = 1,
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

impl AclOperation {
    pub fn from_code(code: i8) -> Option<AclOperation> {
        use AclOperation::*;
        Some(match code {
            1 => Any,
            2 => All,
            3 => Read,
            4 => Write,
            5 => Create,
            6 => Delete,
            7 => Alter,
            8 => Describe,
            9 => ClusterAction,
            10 => DescribeConfigs,
            11 => AlterConfigs,
            12 => IdempotentWrite,
            13 => CreateTokens,
            14 => DescribeTokens,
            _ => return None,
        })
    }

    pub fn code(self) -> i8 {
        self as i8
    }

    /// Whether an ALLOW ACL for `self` lets `wanted` happen: ALL allows everything, and
    /// (as in Kafka) READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
    /// DESCRIBE_CONFIGS. A DENY ACL denies only its own operation (or ALL).
    pub fn allows(self, wanted: AclOperation) -> bool {
        use AclOperation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

/// Kafka's `ResourceType` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum ResourceType {
    /// Filters only: any type.
    Any = 1,
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

impl ResourceType {
    pub fn from_code(code: i8) -> Option<ResourceType> {
        use ResourceType::*;
        Some(match code {
            1 => Any,
            2 => Topic,
            3 => Group,
            4 => Cluster,
            5 => TransactionalId,
            6 => DelegationToken,
            7 => User,
            _ => return None,
        })
    }

    pub fn code(self) -> i8 {
        self as i8
    }
}

/// The one cluster resource's name, as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// What Kafka answers when the client did not ask (`include_*_authorized_operations`
/// false): `Integer.MIN_VALUE`, "not provided".
pub const NOT_REQUESTED: i32 = i32::MIN;

/// The operations a resource type supports, as Kafka's `AclEntry.supportedOperations`.
pub fn supported_operations(resource: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource {
        ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => {
            &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe]
        }
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any => &[],
    }
}

/// The authorized-operations field: the supported operations `allowed` says yes to, or
/// [`NOT_REQUESTED`] when the client did not ask.
pub fn authorized_operations(resource: ResourceType, requested: bool, allowed: impl Fn(AclOperation) -> bool) -> i32 {
    if !requested {
        return NOT_REQUESTED;
    }
    supported_operations(resource).iter().filter(|op| allowed(**op)).fold(0i32, |bits, op| bits | (1 << *op as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_kafka_without_an_authorizer() {
        let all = |_| true;
        // Bits 3..=8 and 10, 11 (Kafka 4.x, no authorizer, topic "t": 3576).
        assert_eq!(authorized_operations(ResourceType::Topic, true, all), 0b1101_1111_1000);
        // Create, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite.
        assert_eq!(authorized_operations(ResourceType::Cluster, true, all), 0b1_1111_1010_0000);
        assert_eq!(authorized_operations(ResourceType::Group, true, all), 0b1101_0100_1000);
        assert_eq!(authorized_operations(ResourceType::Topic, false, all), i32::MIN);
        let read_only = |op| op == AclOperation::Read || op == AclOperation::Describe;
        assert_eq!(authorized_operations(ResourceType::Topic, true, read_only), 0b1_0000_1000);
    }

    #[test]
    fn implied_operations_are_kafkas() {
        use AclOperation::*;
        assert!(Read.allows(Describe) && Write.allows(Describe) && Alter.allows(Describe));
        assert!(AlterConfigs.allows(DescribeConfigs) && !AlterConfigs.allows(Describe));
        assert!(All.allows(ClusterAction) && !Describe.allows(Read));
        for code in 1..=14 {
            assert_eq!(AclOperation::from_code(code).unwrap().code(), code);
        }
    }
}
