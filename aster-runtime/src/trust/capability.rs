//! Gate 3: method-level capability checks (`CapabilityInterceptor` of the reference).
//!
//! The caller's roles are the comma-separated `aster.role` admission attribute (each entry
//! trimmed, empty entries dropped). A requirement is satisfied when:
//!
//! * `ROLE`: its first role is one of the caller's roles;
//! * `ANY_OF`: the caller has at least one of its roles;
//! * `ALL_OF`: the caller has all of its roles;
//! * a requirement with no roles is always satisfied.
//!
//! A service-level and a method-level requirement must both pass; the service-level one is
//! checked first. Requirement roles are compared exactly as written (no normalization).

use std::collections::BTreeSet;

use crate::contract::model::{CapabilityKind, CapabilityRequirement};

use super::{ATTR_ROLE, Attributes};

/// The caller's roles: `aster.role` split on `,`, trimmed, without empty entries.
pub fn caller_roles(attributes: &Attributes) -> BTreeSet<&str> {
    attributes
        .get(ATTR_ROLE)
        .map_or_else(BTreeSet::new, |raw| raw.split(',').map(str::trim).filter(|r| !r.is_empty()).collect())
}

/// Whether a caller with `attributes` satisfies `requirement`.
pub fn evaluate(requirement: &CapabilityRequirement, attributes: &Attributes) -> bool {
    let roles = caller_roles(attributes);
    let Some(first) = requirement.roles.first() else {
        return true;
    };
    match requirement.kind {
        CapabilityKind::Role => roles.contains(first.as_str()),
        CapabilityKind::AnyOf => requirement.roles.iter().any(|r| roles.contains(r.as_str())),
        CapabilityKind::AllOf => requirement.roles.iter().all(|r| roles.contains(r.as_str())),
    }
}

/// A failed capability check; the call fails with `PERMISSION_DENIED` and
/// [`message`](Self::message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityDenied {
    /// The service-level requirement is not met.
    #[error("capability check failed for service '{service}'")]
    Service {
        /// The service name.
        service: String,
    },
    /// The method-level requirement is not met.
    #[error("capability check failed for method '{service}.{method}'")]
    Method {
        /// The service name.
        service: String,
        /// The method name.
        method: String,
    },
}

impl CapabilityDenied {
    /// The status message the reference sends with `PERMISSION_DENIED`.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Checks a call of `service.method` by a caller with `attributes` against the service-level
/// and method-level requirements (either may be absent; both must pass).
pub fn check_call(
    service: &str,
    method: &str,
    service_requirement: Option<&CapabilityRequirement>,
    method_requirement: Option<&CapabilityRequirement>,
    attributes: &Attributes,
) -> Result<(), CapabilityDenied> {
    if let Some(req) = service_requirement
        && !evaluate(req, attributes)
    {
        return Err(CapabilityDenied::Service { service: service.to_string() });
    }
    if let Some(req) = method_requirement
        && !evaluate(req, attributes)
    {
        return Err(CapabilityDenied::Method { service: service.to_string(), method: method.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: CapabilityKind, roles: &[&str]) -> CapabilityRequirement {
        CapabilityRequirement { kind, roles: roles.iter().map(|r| r.to_string()).collect() }
    }

    fn attrs(role: Option<&str>) -> Attributes {
        role.map(|r| Attributes::from([(ATTR_ROLE.to_string(), r.to_string())])).unwrap_or_default()
    }

    #[test]
    fn roles_are_split_and_trimmed() {
        let a = attrs(Some(" ops.status , ops.logs,,admin "));
        assert_eq!(caller_roles(&a).into_iter().collect::<Vec<_>>(), vec!["admin", "ops.logs", "ops.status"]);
        assert!(caller_roles(&attrs(None)).is_empty());
        assert!(caller_roles(&attrs(Some(""))).is_empty());
    }

    /// (kind, required roles, caller's aster.role, allowed)
    #[test]
    fn allow_deny_table() {
        use CapabilityKind::*;
        let table: &[(CapabilityKind, &[&str], Option<&str>, bool)] = &[
            (Role, &["admin"], Some("admin"), true),
            (Role, &["admin"], Some("ops,admin"), true),
            (Role, &["admin"], Some("ops"), false),
            (Role, &["admin"], None, false),
            (Role, &["admin"], Some("Admin"), false),
            (Role, &["admin"], Some("administrator"), false),
            (Role, &["admin", "ops"], Some("ops"), false), // ROLE looks at the first role only
            (Role, &[], None, true),
            (AnyOf, &["a", "b"], Some("b"), true),
            (AnyOf, &["a", "b"], Some("c,a"), true),
            (AnyOf, &["a", "b"], Some("c"), false),
            (AnyOf, &["a", "b"], None, false),
            (AnyOf, &[], Some("x"), true),
            (AllOf, &["a", "b"], Some("a,b"), true),
            (AllOf, &["a", "b"], Some("b, a ,c"), true),
            (AllOf, &["a", "b"], Some("a"), false),
            (AllOf, &["a", "b"], None, false),
            (AllOf, &[], None, true),
            (AllOf, &["a", "a"], Some("a"), true),
        ];
        for (kind, roles, caller, allowed) in table {
            assert_eq!(evaluate(&req(*kind, roles), &attrs(*caller)), *allowed, "{kind:?} {roles:?} vs {caller:?}");
        }
    }

    #[test]
    fn service_and_method_both_required() {
        let svc = req(CapabilityKind::Role, &["ops"]);
        let m = req(CapabilityKind::AllOf, &["ops", "write"]);
        assert_eq!(check_call("S", "m", None, None, &attrs(None)), Ok(()));
        assert_eq!(check_call("S", "m", Some(&svc), Some(&m), &attrs(Some("ops,write"))), Ok(()));
        let e = check_call("S", "m", Some(&svc), Some(&m), &attrs(Some("ops"))).unwrap_err();
        assert_eq!(e.message(), "capability check failed for method 'S.m'");
        let e = check_call("S", "m", Some(&svc), Some(&m), &attrs(Some("write"))).unwrap_err();
        assert_eq!(e.message(), "capability check failed for service 'S'");
        assert_eq!(check_call("S", "m", None, Some(&m), &attrs(Some("write,ops"))), Ok(()));
        assert!(check_call("S", "m", Some(&svc), None, &attrs(Some("x"))).is_err());
    }
}
