//! Which address an entity is paired with: one choice that the feature SQL (what the model
//! learns) and the scorer (what it is asked about) must make alike, so it lives here, where the
//! scorer's lone build sees it too, and the manifest names the same type.
//!
//! Security Lake's VPC Flow Logs mapping puts the instance fields (`instance_uid`,
//! `interface_uid`, ...) on the endpoint of the interface that logged the flow: `src_endpoint`
//! for egress records (`connection_info.direction_id` 2, Outbound), `dst_endpoint` for ingress
//! (1, Inbound). So `src_endpoint.ip` beside `src_endpoint.instance_uid` is, on every record that
//! has an instance there, the instance's own address: a pair that says nothing about who the
//! instance talks to. [`Peer::Remote`] pairs the instance with the other end instead.

/// OCSF `connection_info.direction_id` of an inbound flow (OCSF 1.0.0-rc.2 and 1.1.0 alike).
pub const INBOUND: i32 = 1;
/// OCSF `connection_info.direction_id` of an outbound flow.
pub const OUTBOUND: i32 = 2;

/// The address paired with each entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "control-plane", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    /// `src_endpoint.instance_uid` with `src_endpoint.ip`, as AWS's IP Insights blog sample
    /// pairs them. On VPC flows that is the instance's own address.
    #[default]
    Source,
    /// The instance with the other end of the flow: on an inbound flow (`direction_id` 1) the
    /// instance is `dst_endpoint` and the address `src_endpoint.ip`; on an outbound flow (2) the
    /// instance is `src_endpoint` and the address `dst_endpoint.ip`. Flows of any other
    /// direction (unknown, lateral, other) have no remote end and are left out. On Route 53
    /// queries: the querying instance with each address its query resolved to (`answers[].rdata`).
    Remote,
}

impl Peer {
    /// The spelling in the manifest and in the scorer's environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Source => "source",
            Peer::Remote => "remote",
        }
    }

    pub fn parse(text: &str) -> Option<Peer> {
        [Peer::Source, Peer::Remote].into_iter().find(|p| p.as_str() == text)
    }
}

/// The ends of one flow record, as read from its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEnds<'a> {
    pub direction_id: Option<i32>,
    pub src_entity: Option<&'a str>,
    pub src_ip: Option<&'a str>,
    pub dst_entity: Option<&'a str>,
    pub dst_ip: Option<&'a str>,
}

impl<'a> FlowEnds<'a> {
    /// The instance and the remote address, or `None` for a flow that is neither inbound nor
    /// outbound. Either may still be null or `-`; the pair table rejects those as usual.
    pub fn remote(&self) -> Option<(Option<&'a str>, Option<&'a str>)> {
        match self.direction_id? {
            INBOUND => Some((self.dst_entity, self.src_ip)),
            OUTBOUND => Some((self.src_entity, self.dst_ip)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(direction_id: Option<i32>) -> FlowEnds<'static> {
        FlowEnds {
            direction_id,
            src_entity: Some("i-src"),
            src_ip: Some("10.0.0.1"),
            dst_entity: Some("i-dst"),
            dst_ip: Some("10.0.0.2"),
        }
    }

    #[test]
    fn the_remote_end_follows_the_direction_and_other_directions_have_none() {
        assert_eq!(ends(Some(INBOUND)).remote(), Some((Some("i-dst"), Some("10.0.0.1"))));
        assert_eq!(ends(Some(OUTBOUND)).remote(), Some((Some("i-src"), Some("10.0.0.2"))));
        for other in [None, Some(0), Some(3), Some(99)] {
            assert_eq!(ends(other).remote(), None, "{other:?}");
        }
    }

    #[test]
    fn the_spelling_round_trips_and_source_is_the_default() {
        for peer in [Peer::Source, Peer::Remote] {
            assert_eq!(Peer::parse(peer.as_str()), Some(peer));
        }
        assert_eq!(Peer::parse("Remote"), None);
        assert_eq!(Peer::default(), Peer::Source);
    }
}
