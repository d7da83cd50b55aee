//! Kafka's ACL operations and the "authorized operations" bit fields that Metadata
//! (v8+), DescribeCluster and DescribeGroups (v3+) return when the client asks for them
//! (KIP-430). Without an authorizer Kafka reports every operation the resource type
//! supports (`AclEntry.supportedOperations`), and so does Sluice.

/// Kafka's `AclOperation` codes (the bit positions in the field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AclOperation {
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
}

/// The resource types that carry authorized operations in responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

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
    }
}

/// The authorized-operations field for `resource`: every supported operation (there is
/// no authorizer yet), or [`NOT_REQUESTED`] when the client did not ask.
pub fn authorized_operations(resource: ResourceType, requested: bool) -> i32 {
    if !requested {
        return NOT_REQUESTED;
    }
    supported_operations(resource).iter().fold(0i32, |bits, op| bits | (1 << *op as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_kafka_without_an_authorizer() {
        // Bits 3..=8 and 10, 11 (Kafka 4.x, no authorizer, topic "t": 3576).
        assert_eq!(authorized_operations(ResourceType::Topic, true), 0b1101_1111_1000);
        // Create, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite.
        assert_eq!(authorized_operations(ResourceType::Cluster, true), 0b1_1111_1010_0000);
        assert_eq!(authorized_operations(ResourceType::Group, true), 0b1101_0100_1000);
        assert_eq!(authorized_operations(ResourceType::Topic, false), i32::MIN);
    }
}
