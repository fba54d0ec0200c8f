//! Who is calling the admin API and what they may do: the one place the role rules live.
//!
//! | principal | may |
//! |---|---|
//! | bootstrap admin token, `platform_admin` | everything |
//! | `finops`, `risk_officer`, `auditor` | read everything (the audit trail too, for `auditor` and `risk_officer`); `finops` also manages budgets; `risk_officer` also writes guard policies; `auditor`, `risk_officer` read stored payloads (a reason required, audited); `risk_officer` erases end users |
//! | pod `lead` | read their pod; change it, its members, its use cases and stages, its keys; store evaluation suites and start runs |
//! | pod `builder` | read their pod; issue, rotate and revoke keys of its use cases; store evaluation suites and start runs |
//! | pod `domain_expert` | read their pod; store evaluation suites and start runs |
//! | pod `analyst`, `viewer` | read their pod |
//! | any user | issue, list and revoke their own personal tokens (only a platform admin does so for others, and changes users) |
//!
//! Objects of a pod the caller may not read answer 404, exactly like objects that do not exist.

use std::collections::HashMap;
use tollgate_http::error::ApiError;
use tollgate_store::{OrgRole, PodRole};

/// An authenticated admin caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The bootstrap admin token.
    Admin,
    /// A person with a personal token.
    User {
        /// `usr_…`.
        id: String,
        /// Org-wide role.
        org_role: Option<OrgRole>,
        /// Pod id → role.
        pods: HashMap<String, PodRole>,
        /// The personal token this request authenticated with, `tok_…`.
        token_id: String,
        /// When that token expires, Unix ms: tokens it issues to its user expire no later.
        token_expires_at: Option<i64>,
    },
}

impl Principal {
    /// The actor written to the audit trail.
    pub fn actor(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::User { id, .. } => id.clone(),
        }
    }

    /// Whether this is the user `user_id`.
    pub fn is_user(&self, user_id: &str) -> bool {
        matches!(self, Principal::User { id, .. } if id == user_id)
    }

    fn org_role(&self) -> Option<OrgRole> {
        match self {
            Principal::Admin => Some(OrgRole::PlatformAdmin),
            Principal::User { org_role, .. } => *org_role,
        }
    }

    /// The bootstrap token or a platform admin.
    pub fn is_admin(&self) -> bool {
        self.org_role() == Some(OrgRole::PlatformAdmin)
    }

    /// Holds org role `r` (the bootstrap token holds none: it is not a person).
    pub fn has_org_role(&self, r: OrgRole) -> bool {
        matches!(self, Principal::User { org_role: Some(o), .. } if *o == r)
    }

    /// Reads every pod.
    pub fn reads_all(&self) -> bool {
        self.org_role().is_some()
    }

    /// Creates and deletes budgets.
    pub fn manages_budgets(&self) -> bool {
        matches!(
            self.org_role(),
            Some(OrgRole::PlatformAdmin | OrgRole::Finops)
        )
    }

    /// Writes guard policies (the org default and every use case's).
    pub fn manages_policies(&self) -> bool {
        matches!(
            self.org_role(),
            Some(OrgRole::PlatformAdmin | OrgRole::RiskOfficer)
        )
    }

    /// Reads stored payloads (with a reason, audited) and erases end users' data.
    pub fn reads_payloads(&self) -> bool {
        matches!(
            self.org_role(),
            Some(OrgRole::PlatformAdmin | OrgRole::Auditor | OrgRole::RiskOfficer)
        )
    }

    /// Erases an end user's stored data.
    pub fn erases(&self) -> bool {
        self.manages_policies()
    }

    /// Reads the audit trail.
    pub fn reads_audit(&self) -> bool {
        matches!(
            self.org_role(),
            Some(OrgRole::PlatformAdmin | OrgRole::Auditor | OrgRole::RiskOfficer)
        )
    }

    /// Role in `pod`, if a member.
    pub fn pod_role(&self, pod: &str) -> Option<PodRole> {
        match self {
            Principal::Admin => None,
            Principal::User { pods, .. } => pods.get(pod).copied(),
        }
    }

    /// Pods this principal may read; `None`: all.
    pub fn visible_pods(&self) -> Option<Vec<String>> {
        match self {
            _ if self.reads_all() => None,
            Principal::User { pods, .. } => Some(pods.keys().cloned().collect()),
            Principal::Admin => None,
        }
    }

    /// May read `pod`'s objects.
    pub fn can_read(&self, pod: &str) -> bool {
        self.reads_all() || self.pod_role(pod).is_some()
    }

    /// May change `pod`, its members, use cases and stages.
    pub fn can_manage(&self, pod: &str) -> bool {
        self.is_admin() || self.pod_role(pod) == Some(PodRole::Lead)
    }

    /// May issue, rotate and revoke keys of `pod`'s use cases.
    pub fn can_issue_keys(&self, pod: &str) -> bool {
        self.is_admin() || matches!(self.pod_role(pod), Some(PodRole::Lead | PodRole::Builder))
    }

    /// May store `pod`'s evaluation suites and start runs of them (leads also do, pod leads
    /// through their role; domain experts write the cases).
    pub fn can_evaluate(&self, pod: &str) -> bool {
        self.is_admin()
            || matches!(
                self.pod_role(pod),
                Some(PodRole::Lead | PodRole::Builder | PodRole::DomainExpert)
            )
    }

    /// 404 unless the pod is readable; 403 unless `allowed`.
    pub fn check(&self, pod: &str, what: &str, allowed: bool) -> Result<(), ApiError> {
        if !self.can_read(pod) {
            return Err(ApiError::Missing(what.to_string()));
        }
        if !allowed {
            return Err(ApiError::Forbidden {
                message: format!("your role does not allow this on {what}"),
                code: "role_forbids",
            });
        }
        Ok(())
    }

    /// 403 unless a platform admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                message: "only a platform admin may do this".into(),
                code: "role_forbids",
            })
        }
    }
}
