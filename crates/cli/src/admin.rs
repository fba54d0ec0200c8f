//! `tollgate pods | users | usecases | keys …`: the admin API from the command line.
//!
//! Every command is one or two HTTP calls to `/admin/v1` at `--url` (or `TOLLGATE_URL`) with the
//! token in `TOLLGATE_TOKEN` (the bootstrap admin token or a personal `tgu_` token). Output is a
//! table, or the API's JSON with `--json`. Errors print the API's message and exit with status 1.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where and how to reach the admin API.
#[derive(Debug, clap::Args)]
pub struct Conn {
    /// Gateway base URL.
    #[arg(
        long,
        env = "TOLLGATE_URL",
        default_value = "http://127.0.0.1:4000",
        global = true
    )]
    url: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// `tollgate pods …`.
#[derive(Debug, clap::Subcommand)]
pub enum Pods {
    /// List pods.
    List,
    /// Create a pod (platform admin).
    Create {
        /// Unique name.
        name: String,
        /// What the pod does.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show a pod.
    Get {
        /// Pod id.
        id: String,
    },
    /// List a pod's members.
    Members {
        /// Pod id.
        id: String,
    },
    /// Add a member or change their role.
    AddMember {
        /// Pod id.
        pod: String,
        /// User id.
        user: String,
        /// lead | builder | domain_expert | analyst | viewer.
        #[arg(long)]
        role: String,
    },
    /// Remove a member.
    RemoveMember {
        /// Pod id.
        pod: String,
        /// User id.
        user: String,
    },
}

/// `tollgate users …`.
#[derive(Debug, clap::Subcommand)]
pub enum Users {
    /// List users.
    List,
    /// Create a user (platform admin).
    Create {
        /// E-mail.
        #[arg(long)]
        email: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// platform_admin | finops | risk_officer | auditor.
        #[arg(long)]
        org_role: Option<String>,
    },
    /// Show a user.
    Get {
        /// User id.
        id: String,
    },
    /// Issue a personal admin token (shown once).
    Token {
        /// User id.
        id: String,
        /// Token name.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

/// `tollgate usecases …`.
#[derive(Debug, clap::Subcommand)]
pub enum UseCases {
    /// List use cases.
    List {
        /// Only this pod.
        #[arg(long)]
        pod: Option<String>,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Propose a use case.
    Create {
        /// Owning pod id.
        #[arg(long)]
        pod: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Routes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        routes: Vec<String>,
    },
    /// Show a use case.
    Get {
        /// Use case id.
        id: String,
    },
    /// Move to another stage.
    Stage {
        /// Use case id.
        id: String,
        /// proposed | pilot | production | retired.
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Stage history.
    History {
        /// Use case id.
        id: String,
    },
    /// Change the value model (only the fields given; the rest is kept).
    Update {
        /// Use case id.
        id: String,
        /// Who answers for its value.
        #[arg(long)]
        owner: Option<String>,
        /// efficiency | revenue | experience | risk.
        #[arg(long)]
        driver: Option<String>,
        /// The primary KPI.
        #[arg(long)]
        kpi: Option<String>,
        /// Its unit.
        #[arg(long)]
        kpi_unit: Option<String>,
        /// Its value before the use case.
        #[arg(long)]
        baseline: Option<f64>,
        /// The value aimed for.
        #[arg(long)]
        target: Option<f64>,
        /// Tasks a month at full scale (what the gate projects the monthly cost for).
        #[arg(long)]
        volume_per_month: Option<u64>,
        /// People who could use it.
        #[arg(long)]
        eligible_users: Option<u64>,
        /// What one successful outcome is worth, USD (exact, up to 9 decimals: `12.50`).
        #[arg(long)]
        value_per_outcome: Option<String>,
    },
    /// Print the checklist of the next stage (or `--to`): each line with its evidence.
    Gate {
        /// Use case id.
        id: String,
        /// pilot | production (default: the stage above the use case's).
        #[arg(long)]
        to: Option<String>,
    },
    /// Ask for a promotion (the request others approve; you may not approve it yourself).
    RequestPromotion {
        /// Use case id.
        id: String,
        /// pilot | production.
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw the open promotion request and its approvals (whoever asked, a lead, an admin).
    WithdrawPromotion {
        /// Use case id.
        id: String,
    },
    /// Approve the open promotion request as a lead of the pod or as a risk officer.
    Approve {
        /// Use case id.
        id: String,
        /// lead | risk_officer.
        #[arg(long)]
        role: String,
        /// What you say with it.
        #[arg(long)]
        note: Option<String>,
    },
    /// Move up a stage through its gate: prints the checklist with the evidence for each line
    /// and refuses (exit 1) when one is unmet.
    Promote {
        /// Use case id.
        id: String,
        /// pilot | production.
        #[arg(long)]
        to: String,
        /// Why (recorded with the stage change; required with `--override`).
        #[arg(long)]
        reason: Option<String>,
        /// Move past an unmet gate (platform admins; give a `--reason`: it is audited and
        /// shown on the use case ever after).
        #[arg(long = "override")]
        override_gate: bool,
    },
}

/// `tollgate budgets …`.
#[derive(Debug, clap::Subcommand)]
pub enum Budgets {
    /// List budgets.
    List,
    /// Set a budget (finops and platform admins).
    Create {
        /// key | use_case | use_case_eval | pod | org.
        #[arg(long)]
        scope: String,
        /// The key, use case or pod id (none for `org`).
        #[arg(long)]
        scope_id: Option<String>,
        /// The limit in USD (a decimal string: `50`, `12.5`).
        #[arg(long)]
        amount_usd: String,
        /// day | week | month | lifetime.
        #[arg(long, default_value = "month")]
        period: String,
        /// hard (refuses requests) | soft (alerts).
        #[arg(long, default_value = "hard")]
        mode: String,
    },
    /// Delete a budget.
    Delete {
        /// Budget id.
        id: String,
    },
}

/// `tollgate gates …`.
#[derive(Debug, clap::Subcommand)]
pub enum Gates {
    /// Print the organization's gates as YAML (a file `gates set` takes back).
    Get,
    /// Set the gates from a YAML (or JSON) file, `-` for stdin (platform admins).
    Set {
        /// The file.
        file: std::path::PathBuf,
    },
}

/// `tollgate keys …`.
#[derive(Debug, clap::Subcommand)]
pub enum Keys {
    /// List keys.
    List {
        /// Only this use case.
        #[arg(long)]
        use_case: Option<String>,
        /// Include revoked and expired keys.
        #[arg(long)]
        all: bool,
    },
    /// Issue a key (its secret is shown once).
    Create {
        /// Use case id.
        #[arg(long)]
        use_case: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Limit to these routes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// Expiry, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Revoke a key now.
    Revoke {
        /// Key id.
        id: String,
    },
    /// Replace a key; the old one works for the grace period.
    Rotate {
        /// Key id.
        id: String,
        /// Grace period, seconds.
        #[arg(long, default_value_t = 3600)]
        grace_seconds: u64,
    },
}

/// `tollgate policies …`.
#[derive(Debug, clap::Subcommand)]
pub enum Policies {
    /// Print the policy in force as YAML (a use case's: its own, else the org default); the
    /// output is a file `policies set` takes back.
    Get {
        /// The use case (the org default without it).
        #[arg(long)]
        use_case: Option<String>,
    },
    /// Store a new version from a YAML (or JSON) file, `-` for stdin (risk officers and platform
    /// admins).
    Set {
        /// The policy file.
        file: std::path::PathBuf,
        /// The use case (the org default without it).
        #[arg(long)]
        use_case: Option<String>,
        /// Why, kept with the version and in the audit trail.
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove a use case's own policy: the org default governs it again.
    Remove {
        /// The use case.
        #[arg(long)]
        use_case: String,
    },
    /// Every version, oldest first.
    Versions {
        /// The use case (the org default without it).
        #[arg(long)]
        use_case: Option<String>,
    },
}

/// `tollgate payloads …`.
#[derive(Debug, clap::Subcommand)]
pub enum Payloads {
    /// Open a request's stored payload (auditors, risk officers, platform admins); the read and
    /// its reason go to the audit trail.
    Read {
        /// The request record's id (`rec_…`).
        record_id: String,
        /// Why you read it.
        #[arg(long)]
        reason: String,
    },
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    pub(crate) json: bool,
}

impl Client {
    pub(crate) fn new(conn: &Conn) -> anyhow::Result<Client> {
        let token = std::env::var("TOLLGATE_TOKEN").context(
            "set TOLLGATE_TOKEN to an admin token (the bootstrap token or a personal tgu_ token)",
        )?;
        Ok(Client {
            http: reqwest::Client::new(),
            base: format!("{}/admin/v1", conn.url.trim_end_matches('/')),
            token,
            json: conn.json,
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        let v: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let msg = v["error"]["message"].as_str().unwrap_or("request failed");
            bail!("{status}: {msg}");
        }
        Ok(v)
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// A CSV answer: its text and headers (an error answer is JSON, shown as the error).
    /// A text answer (CSV, SVG) and its headers.
    async fn get_csv(&self, path: &str) -> anyhow::Result<(String, reqwest::header::HeaderMap)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            bail!(
                "{status}: {}",
                v["error"]["message"].as_str().unwrap_or("request failed")
            );
        }
        Ok((text, headers))
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Follows `next` cursors and returns every item.
    pub(crate) async fn list(&self, path: &str) -> anyhow::Result<Value> {
        let mut items = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut page = self.get(&format!("{path}{sep}limit=200")).await?;
        loop {
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) => {
                    // A cursor may be a name (patterns, suites): sent percent-encoded.
                    page = self
                        .get(&format!("{path}{sep}limit=200&after={}", enc(next)))
                        .await?
                }
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    pub(crate) fn show(&self, v: &Value, columns: &[&str]) {
        if self.json {
            print_json(v);
            return;
        }
        let rows: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let cell = |row: &Value, c: &str| -> String {
            let mut x = row;
            for part in c.split('.') {
                x = &x[part];
            }
            let text = match x {
                Value::Null => "-".into(),
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            terminal_safe(&text)
        };
        let widths: Vec<usize> = columns
            .iter()
            .map(|c| {
                rows.iter()
                    .map(|r| cell(r, c).chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(c.len())
            })
            .collect();
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        outln!(
            "{}",
            line(columns.iter().map(|c| c.to_uppercase()).collect())
        );
        for r in rows {
            outln!("{}", line(columns.iter().map(|c| cell(r, c)).collect()));
        }
    }
}

/// Runs `tollgate pods …`.
pub async fn pods(conn: Conn, cmd: Pods) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let cols = ["id", "name", "description", "created_at"];
    match cmd {
        Pods::List => c.show(&c.list("/pods").await?, &cols),
        Pods::Create { name, description } => c.show(
            &c.post("/pods", json!({"name": name, "description": description}))
                .await?,
            &cols,
        ),
        Pods::Get { id } => c.show(&c.get(&format!("/pods/{id}")).await?, &cols),
        Pods::Members { id } => c.show(
            &c.list(&format!("/pods/{id}/members")).await?,
            &["user_id", "role", "since"],
        ),
        Pods::AddMember { pod, user, role } => {
            let v = c
                .call(
                    reqwest::Method::PUT,
                    &format!("/pods/{pod}/members/{user}"),
                    Some(json!({"role": role})),
                )
                .await?;
            c.show(&v, &["pod_id", "user_id", "role"]);
        }
        Pods::RemoveMember { pod, user } => {
            c.call(
                reqwest::Method::DELETE,
                &format!("/pods/{pod}/members/{user}"),
                None,
            )
            .await?;
            outln!("removed {user} from {pod}");
        }
    }
    Ok(())
}

/// Runs `tollgate users …`.
pub async fn users(conn: Conn, cmd: Users) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let cols = ["id", "email", "name", "org_role"];
    match cmd {
        Users::List => c.show(&c.list("/users").await?, &cols),
        Users::Create {
            email,
            name,
            org_role,
        } => c.show(
            &c.post(
                "/users",
                json!({"email": email, "name": name, "org_role": org_role}),
            )
            .await?,
            &cols,
        ),
        Users::Get { id } => c.show(&c.get(&format!("/users/{id}")).await?, &cols),
        Users::Token { id, name } => {
            let v = c
                .post(&format!("/users/{id}/tokens"), json!({"name": name}))
                .await?;
            c.show(&v, &["id", "prefix", "secret"]);
            if !c.json {
                eprintln!("The secret is shown only now.");
            }
        }
    }
    Ok(())
}

/// Runs `tollgate usecases …`.
pub async fn use_cases(conn: Conn, cmd: UseCases) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let cols = ["id", "pod_id", "name", "stage", "priority", "routes"];
    match cmd {
        UseCases::List { pod, stage } => {
            let mut q = Vec::new();
            if let Some(p) = pod {
                q.push(format!("pod_id={p}"));
            }
            if let Some(s) = stage {
                q.push(format!("stage={s}"));
            }
            let path = if q.is_empty() {
                "/use-cases".to_string()
            } else {
                format!("/use-cases?{}", q.join("&"))
            };
            c.show(&c.list(&path).await?, &cols);
        }
        UseCases::Create {
            pod,
            name,
            description,
            routes,
        } => c.show(
            &c.post(
                "/use-cases",
                json!({"pod_id": pod, "name": name, "description": description, "routes": routes}),
            )
            .await?,
            &cols,
        ),
        UseCases::Get { id } => {
            let uc = c.get(&format!("/use-cases/{id}")).await?;
            c.show(&uc, &cols);
            // An override stays on the use case for ever: say so wherever it is shown.
            for o in uc["gate_overrides"].as_array().into_iter().flatten() {
                if c.json {
                    break;
                }
                let t = |k: &str| terminal_safe(o[k].as_str().unwrap_or("-"));
                outln!(
                    "GATE OVERRIDDEN {} by {} ({} -> {}): {} (unmet: {})",
                    t("at"),
                    t("actor"),
                    t("from"),
                    t("to"),
                    t("reason"),
                    o["unmet"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                );
            }
        }
        UseCases::Stage { id, to, reason } => c.show(
            &c.post(
                &format!("/use-cases/{id}/stage"),
                json!({"to": to, "reason": reason}),
            )
            .await?,
            &cols,
        ),
        UseCases::History { id } => c.show(
            &c.list(&format!("/use-cases/{id}/stage-changes")).await?,
            &["at", "from", "to", "actor", "reason"],
        ),
        UseCases::Update {
            id,
            owner,
            driver,
            kpi,
            kpi_unit,
            baseline,
            target,
            volume_per_month,
            eligible_users,
            value_per_outcome,
        } => {
            // Only the fields given: the server merges them into the stored value model (the
            // rest is kept, even if someone changes it meanwhile).
            let mut vm = json!({});
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    vm[k] = v;
                }
            };
            let nanos = value_per_outcome
                .map(|usd| {
                    tollgate_meter::money::parse_decimal(&usd, 9).map_err(|e| {
                        anyhow::anyhow!(
                            "--value-per-outcome must be an amount in USD with at most 9 decimals, such as 12.50: {e}"
                        )
                    })
                })
                .transpose()?;
            set("value_per_outcome_nano_usd", nanos.map(Value::from));
            set("owner", owner.map(Value::from));
            set("driver", driver.map(Value::from));
            set("kpi", kpi.map(Value::from));
            set("kpi_unit", kpi_unit.map(Value::from));
            set("baseline", baseline.map(Value::from));
            set("target", target.map(Value::from));
            set("volume_per_month", volume_per_month.map(Value::from));
            set("eligible_users", eligible_users.map(Value::from));
            let v = c
                .call(
                    reqwest::Method::PATCH,
                    &format!("/use-cases/{id}"),
                    Some(json!({"value_model": vm})),
                )
                .await?;
            c.show(
                &v,
                &[
                    "id",
                    "value_model.owner",
                    "value_model.kpi",
                    "value_model.baseline",
                    "value_model.volume_per_month",
                ],
            );
        }
        UseCases::Gate { id, to } => crate::gates::show(&c, &id, to.as_deref()).await?,
        UseCases::RequestPromotion { id, to, reason } => c.show(
            &c.post(
                &format!("/use-cases/{id}/promotion-requests"),
                json!({"to": to, "reason": reason}),
            )
            .await?,
            &["id", "use_case_id", "from", "to", "requested_by", "at"],
        ),
        UseCases::Approve { id, role, note } => c.show(
            &c.post(
                &format!("/use-cases/{id}/approvals"),
                json!({"role": role, "note": note}),
            )
            .await?,
            &["id", "request_id", "role", "user_id", "at"],
        ),
        UseCases::WithdrawPromotion { id } => {
            c.call(
                reqwest::Method::DELETE,
                &format!("/use-cases/{id}/promotion-requests"),
                None,
            )
            .await?;
            outln!("withdrew the promotion request of {id}");
        }
        UseCases::Promote {
            id,
            to,
            reason,
            override_gate,
        } => {
            let reason = match (reason, override_gate) {
                (Some(r), _) => r,
                (None, false) => "every line of the gate is met".to_string(),
                (None, true) => {
                    bail!("--override needs a --reason: it is audited and shown on the use case")
                }
            };
            crate::gates::promote(&c, &id, &to, &reason, override_gate).await?
        }
    }
    Ok(())
}

/// Runs `tollgate budgets …`.
pub async fn budgets(conn: Conn, cmd: Budgets) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let cols = ["id", "scope", "scope_id", "period", "amount_usd", "mode"];
    match cmd {
        Budgets::List => c.show(&c.list("/budgets").await?, &cols),
        Budgets::Create {
            scope,
            scope_id,
            amount_usd,
            period,
            mode,
        } => c.show(
            &c.post(
                "/budgets",
                json!({"scope": scope, "scope_id": scope_id, "amount_usd": amount_usd, "period": period, "mode": mode}),
            )
            .await?,
            &cols,
        ),
        Budgets::Delete { id } => {
            c.call(reqwest::Method::DELETE, &format!("/budgets/{id}"), None)
                .await?;
            outln!("deleted {id}");
        }
    }
    Ok(())
}

/// Runs `tollgate gates …`.
pub async fn gates(conn: Conn, cmd: Gates) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    match cmd {
        Gates::Get => {
            let v = c.get("/gates").await?;
            if c.json {
                print_json(&v);
            } else {
                out!("{}", serde_yaml::to_string(&v)?);
            }
        }
        Gates::Set { file } => {
            let (_, doc) = read_yaml(&file)?;
            let v = c
                .call(reqwest::Method::PUT, "/gates", Some(doc))
                .await
                .with_context(|| format!("{} was not accepted", file.display()))?;
            if c.json {
                print_json(&v);
            } else {
                out!("{}", serde_yaml::to_string(&v)?);
            }
        }
    }
    Ok(())
}

/// Runs `tollgate payloads …`.
pub async fn payloads(conn: Conn, cmd: Payloads) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    match cmd {
        Payloads::Read { record_id, reason } => {
            let v = c
                .post(
                    &format!("/payloads/{record_id}/read"),
                    json!({"reason": reason}),
                )
                .await?;
            if c.json {
                print_json(&v);
            } else {
                outln!(
                    "record {} ({}, {})",
                    record_id,
                    v["mode"].as_str().unwrap_or("-"),
                    v["at"].as_str().unwrap_or("-")
                );
                for field in ["prompt", "answer"] {
                    match v[field].as_str() {
                        Some(t) => outln!("--- {field}\n{}", terminal_safe(t)),
                        None => outln!(
                            "--- {field}: {} bytes, not kept",
                            v[format!("{field}_bytes")]
                        ),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs `tollgate erase --end-user ID`.
pub async fn erase(conn: Conn, end_user: String) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let v = c.post("/erasure", json!({"end_user": end_user})).await?;
    c.show(&v, &["end_user_hash", "keys_destroyed", "records"]);
    Ok(())
}

/// Runs `tollgate policies …`.
pub async fn policies(conn: Conn, cmd: Policies) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let path = |uc: &Option<String>| match uc {
        Some(id) => format!("/use-cases/{id}/policy"),
        None => "/policies/default".to_string(),
    };
    match cmd {
        Policies::Get { use_case } => {
            let v = c.get(&path(&use_case)).await?;
            if c.json {
                print_json(&v);
            } else {
                outln!(
                    "# {} policy of {}, version {} ({} {})",
                    v["source"].as_str().unwrap_or("-"),
                    v["scope"].as_str().unwrap_or("-"),
                    v["version"],
                    v["created_at"].as_str().unwrap_or("-"),
                    v["created_by"].as_str().unwrap_or("-"),
                );
                out!("{}", serde_yaml::to_string(&v["policy"])?);
            }
        }
        Policies::Set {
            file,
            use_case,
            note,
        } => {
            let (text, policy) = read_yaml(&file)?;
            // Checked here first, so a mistake is named with the file before anything is sent.
            if let Err(e) = tollgate_guard::Policy::from_yaml(&text) {
                bail!("{}: {e}", file.display());
            }
            let v = c
                .call(
                    reqwest::Method::PUT,
                    &path(&use_case),
                    Some(json!({"policy": policy, "note": note})),
                )
                .await?;
            c.show(
                &v,
                &["scope", "source", "version", "created_at", "created_by"],
            );
        }
        Policies::Remove { use_case } => {
            c.call(
                reqwest::Method::DELETE,
                &path(&Some(use_case.clone())),
                None,
            )
            .await?;
            if !c.json {
                outln!("{use_case} is governed by the org default policy again");
            }
        }
        Policies::Versions { use_case } => {
            let v = c.list(&format!("{}/versions", path(&use_case))).await?;
            c.show(
                &v,
                &["version", "source", "created_at", "created_by", "note"],
            );
        }
    }
    Ok(())
}

/// Runs `tollgate keys …`.
pub async fn keys(conn: Conn, cmd: Keys) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    let cols = [
        "id",
        "use_case_id",
        "name",
        "prefix",
        "active",
        "expires_at",
        "revoked_at",
    ];
    match cmd {
        Keys::List { use_case, all } => {
            let mut q = vec![format!("include_inactive={all}")];
            if let Some(u) = use_case {
                q.push(format!("use_case_id={u}"));
            }
            c.show(&c.list(&format!("/keys?{}", q.join("&"))).await?, &cols);
        }
        Keys::Create {
            use_case,
            name,
            scopes,
            expires_at,
        } => {
            let v = c.post("/keys", json!({"use_case_id": use_case, "name": name, "scopes": scopes, "expires_at": expires_at})).await?;
            c.show(&v, &["key.id", "key.prefix", "secret"]);
            if !c.json {
                eprintln!("The secret is shown only now.");
            }
        }
        Keys::Revoke { id } => c.show(
            &c.post(&format!("/keys/{id}/revoke"), Value::Null).await?,
            &cols,
        ),
        Keys::Rotate { id, grace_seconds } => {
            let v = c
                .post(
                    &format!("/keys/{id}/rotate"),
                    json!({"grace_seconds": grace_seconds}),
                )
                .await?;
            c.show(
                &v,
                &["old.id", "old.revoked_at", "new.key.id", "new.secret"],
            );
        }
    }
    Ok(())
}

/// `tollgate report …`.
#[derive(Debug, clap::Subcommand)]
pub enum Report {
    /// Cost advice: identical requests, premium-model spend with a cheaper candidate, keys idle
    /// for 30 days, budgets that will run out before their period ends.
    Advice,
    /// A month of spend in FOCUS 1.2 columns (CSV), for FinOps tools.
    Focus {
        /// The billing period, a calendar month (UTC), e.g. 2026-11.
        #[arg(long)]
        month: String,
        /// Write the CSV to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Month-end spend forecast (this UTC month), in total or by pod or use case.
    Forecast {
        /// pod | use_case; absent: the total only.
        #[arg(long)]
        by: Option<String>,
    },
    /// The 25 KPIs of a use case, a pod or the portfolio (org-wide roles) over a window: each
    /// with its value(s), the events it rests on, or why it is n/a.
    Kpis {
        /// One use case's KPIs.
        #[arg(long, conflicts_with = "pod")]
        use_case: Option<String>,
        /// One pod's KPIs (without either: the portfolio's).
        #[arg(long)]
        pod: Option<String>,
        /// day | week | month: the last 1, 7 or 30 days (default month).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        window: Option<String>,
        /// Start, RFC 3339, instead of `--window`.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// End, RFC 3339, after `--from`.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Print a Markdown table (with each KPI's definition).
        #[arg(long)]
        markdown: bool,
    },
    /// The portfolio: each use case's priority, quadrant and spend, and the stage pipeline; with
    /// `--svg FILE`, the value-versus-feasibility bubble chart (area = spend, colour = stage).
    Portfolio {
        /// Priority weights, e.g. impact=35,feasibility=25,data_readiness=20,risk=10,time_to_impact=10.
        #[arg(long)]
        weights: Option<String>,
        /// Spend over the last day, week or month (default month).
        #[arg(long)]
        window: Option<String>,
        /// Write the chart as SVG to this file.
        #[arg(long)]
        svg: Option<std::path::PathBuf>,
    },
    /// Spend over a time range, grouped (from the hourly rollups).
    Spend {
        /// pod | use_case | key | route | model | day.
        #[arg(long)]
        by: String,
        /// Start, RFC 3339 (e.g. 2026-11-01T00:00:00Z).
        #[arg(long, required_unless_present = "month", conflicts_with = "month")]
        from: Option<String>,
        /// End, RFC 3339, after `--from`.
        #[arg(long, required_unless_present = "month", conflicts_with = "month")]
        to: Option<String>,
        /// A calendar month instead of `--from`/`--to` (showback), e.g. 2026-11.
        #[arg(long)]
        month: Option<String>,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
    },
}

/// Runs `tollgate report …`.
pub async fn report(conn: Conn, cmd: Report) -> anyhow::Result<()> {
    let c = Client::new(&conn)?;
    match cmd {
        Report::Advice => {
            let v = c.get("/reports/advice").await?;
            if c.json {
                print_json(&v);
                return Ok(());
            }
            outln!("Identical requests (what an exact cache would save), last 30 days:");
            c.show(
                &v["duplicate_prompts"],
                &[
                    "use_case_id",
                    "name",
                    "requests",
                    "duplicates",
                    "share_percent",
                    "duplicate_cost_usd",
                ],
            );
            outln!("\nPremium-model spend with a cheaper candidate, last 30 days:");
            c.show(
                &v["premium_models"],
                &[
                    "use_case_id",
                    "name",
                    "model",
                    "cheaper_model",
                    "saving_usd",
                ],
            );
            outln!("\nKeys idle for 30 days:");
            c.show(
                &v["idle_keys"],
                &["key_id", "name", "prefix", "last_used", "created_at"],
            );
            outln!("\nBudgets that will run out before their period ends:");
            c.show(
                &v["budgets_at_risk"],
                &[
                    "budget_id",
                    "scope",
                    "scope_id",
                    "runs_out_at",
                    "period_end",
                ],
            );
        }
        Report::Focus { month, out } => {
            let q = format!("month={}", urlencode(&month));
            if c.json {
                let v = c.get(&format!("/reports/focus?{q}&format=json")).await?;
                print_json(&v);
                return Ok(());
            }
            let (text, headers) = c.get_csv(&format!("/reports/focus?{q}")).await?;
            let number = |name: &str| -> u64 {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let (rows, billed, missing) = (
                number("x-tollgate-focus-rows"),
                number("x-tollgate-focus-billed-nano-usd"),
                number("x-tollgate-focus-not-exported-nano-usd"),
            );
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {rows} rows to {}", path.display());
                }
                None => out!("{text}"),
            }
            eprintln!(
                "FOCUS 1.2, {month}: {rows} rows, billed {}",
                tollgate_meter::Money(billed)
            );
            if missing > 0 {
                eprintln!(
                    "warning: {} of the month's spend was recorded before the FOCUS rollups existed and is not in this export",
                    tollgate_meter::Money(missing)
                );
            }
        }
        Report::Forecast { by } => {
            let path = match by {
                Some(b) => format!("/reports/forecast?by={}", urlencode(&b)),
                None => "/reports/forecast".to_string(),
            };
            let v = c.get(&path).await?;
            if c.json {
                print_json(&v);
                return Ok(());
            }
            let mut rows = v["rows"].as_array().cloned().unwrap_or_default();
            rows.push(v["total"].clone());
            c.show(
                &Value::Array(rows),
                &["group", "name", "spent_nano_usd", "forecast_usd"],
            );
            eprintln!("{}", v["method"].as_str().unwrap_or_default());
        }
        Report::Kpis {
            use_case,
            pod,
            window,
            from,
            to,
            markdown,
        } => {
            let mut q = Vec::new();
            for (k, v) in [
                ("use_case_id", use_case),
                ("pod_id", pod),
                ("window", window),
                ("from", from),
                ("to", to),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(&v)));
                }
            }
            let v = c.get(&format!("/kpis?{}", q.join("&"))).await?;
            if c.json {
                print_json(&v);
                return Ok(());
            }
            out!("{}", kpi_table(&v, markdown));
        }
        Report::Portfolio {
            weights,
            window,
            svg,
        } => {
            let mut q = Vec::new();
            for (k, v) in [("weights", weights), ("window", window)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(&v)));
                }
            }
            if let Some(path) = svg {
                q.push("format=svg".into());
                let (text, _) = c.get_csv(&format!("/portfolio?{}", q.join("&"))).await?;
                std::fs::write(&path, &text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!("wrote the portfolio chart to {}", path.display());
                return Ok(());
            }
            let v = c.get(&format!("/portfolio?{}", q.join("&"))).await?;
            if c.json {
                print_json(&v);
                return Ok(());
            }
            c.show(
                &v["use_cases"],
                &[
                    "name",
                    "stage",
                    "priority",
                    "quadrant",
                    "value",
                    "feasibility",
                    "spend_usd",
                ],
            );
            let p = &v["pipeline"];
            eprintln!(
                "pipeline: {} proposed, {} pilot, {} production, {} retired",
                p["proposed"], p["pilot"], p["production"], p["retired"]
            );
        }
        Report::Spend {
            by,
            from,
            to,
            month,
            csv,
        } => {
            let q = match month {
                Some(m) => format!("by={by}&month={}", urlencode(&m)),
                None => format!(
                    "by={by}&from={}&to={}",
                    urlencode(from.as_deref().unwrap_or_default()),
                    urlencode(to.as_deref().unwrap_or_default())
                ),
            };
            if csv {
                let (text, _) = c.get_csv(&format!("/reports/spend?{q}&format=csv")).await?;
                out!("{text}");
                return Ok(());
            }
            let v = c.get(&format!("/reports/spend?{q}")).await?;
            if c.json {
                print_json(&v);
                return Ok(());
            }
            let mut rows = v["rows"].as_array().cloned().unwrap_or_default();
            rows.push(v["total"].clone());
            c.show(
                &Value::Array(rows),
                &[
                    "group",
                    "name",
                    "requests",
                    "errors",
                    "input_tokens",
                    "output_tokens",
                    "cost_usd",
                ],
            );
        }
    }
    Ok(())
}

/// One KPI's values as text: `dau 2 users, mau 5 users`; money as `$12.50`.
fn kpi_values(k: &Value) -> String {
    if let Some(why) = k["not_available"].as_str() {
        return format!("n/a: {why}");
    }
    let values = k["values"].as_array().cloned().unwrap_or_default();
    values
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap_or_default();
            let x = m["value"].as_f64().unwrap_or_default();
            match (
                m["unit"].as_str().unwrap_or_default(),
                m["nano_usd"].as_i64(),
            ) {
                (_, Some(n)) if n < 0 => {
                    format!("{name} -{}", tollgate_meter::Money(n.unsigned_abs()))
                }
                (_, Some(n)) => format!("{name} {}", tollgate_meter::Money(n.unsigned_abs())),
                ("ratio", _) => format!("{name} {:.1} %", x * 100.0),
                (unit, _) => format!("{name} {} {unit}", short(x)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number with at most three decimals, trailing zeros trimmed.
fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The KPI report as a plain or a Markdown table.
fn kpi_table(v: &Value, markdown: bool) -> String {
    let scope = match v["scope_id"].as_str() {
        Some(id) => format!("{} {id}", v["scope"].as_str().unwrap_or_default()),
        None => v["scope"].as_str().unwrap_or_default().to_string(),
    };
    let mut out = format!(
        "KPIs of the {scope}, {} to {} ({} use cases)\n\n",
        v["from"].as_str().unwrap_or_default(),
        v["to"].as_str().unwrap_or_default(),
        v["use_cases"]
    );
    let kpis = v["kpis"].as_array().cloned().unwrap_or_default();
    if markdown {
        out.push_str("| # | KPI | group | value | events | how |\n|---|---|---|---|---|---|\n");
        for k in &kpis {
            let cell = |s: String| s.replace('|', "\\|");
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                k["number"],
                cell(k["name"].as_str().unwrap_or_default().into()),
                k["group"].as_str().unwrap_or_default(),
                cell(kpi_values(k)),
                k["basis"],
                cell(k["definition"].as_str().unwrap_or_default().into())
            ));
        }
        return out;
    }
    for k in &kpis {
        out.push_str(&format!(
            "{:>2}  {:<48} {:>8}  {}\n",
            k["number"].as_u64().unwrap_or_default(),
            k["name"].as_str().unwrap_or_default(),
            k["basis"].as_u64().unwrap_or_default(),
            kpi_values(k)
        ));
    }
    out
}

pub(crate) fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Percent-encodes a query value (RFC 3339 times carry `+` and `:`).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `s` with every control and bidirectional-override character written as an escape (`\u{1b}`),
/// so text from the server (names stored before they were checked, say) can never move the
/// cursor, recolour the terminal or reorder what a person reads.
pub(crate) fn terminal_safe(s: &str) -> String {
    if !s.chars().any(tollgate_types::text::is_control_or_bidi) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if tollgate_types::text::is_control_or_bidi(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A path segment or query value, percent-encoded.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_escapes_control_and_bidi_characters() {
        assert_eq!(terminal_safe("plain pod"), "plain pod");
        assert_eq!(terminal_safe("red\u{1b}[31mpod"), "red\\u{1b}[31mpod");
        assert_eq!(terminal_safe("a\rb\u{202e}c"), "a\\u{d}b\\u{202e}c");
        assert!(!terminal_safe("x\u{7}\u{9b}y").chars().any(char::is_control));
    }
}

/// The largest YAML document the CLI sends (the admin API takes bodies of 64 KiB).
const MAX_YAML_BYTES: usize = 1024 * 1024;

/// A YAML document from `file` (`-`: standard input), as its text and as JSON. What has no JSON
/// form is refused here, by its path in the document, before anything is sent: YAML's `.nan`
/// and `.inf` (they would go as `null`), tags (`!custom 1`), keys that are not strings; and an
/// empty document or one over 1 MiB.
pub(crate) fn read_yaml(file: &std::path::Path) -> anyhow::Result<(String, Value)> {
    let name = file.display();
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?
    };
    if text.len() > MAX_YAML_BYTES {
        bail!(
            "{name} is {} bytes; at most {MAX_YAML_BYTES} are sent",
            text.len()
        );
    }
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{name}: not valid YAML: {e}"))?;
    if doc.is_null() {
        bail!("{name} is empty: give a YAML mapping");
    }
    if let Some((path, why)) = unsendable(&doc) {
        let at = if path.is_empty() {
            "the document".to_string()
        } else {
            format!("`{path}`")
        };
        bail!("{name}: {at} {why}");
    }
    let json = serde_json::to_value(&doc)
        .map_err(|e| anyhow::anyhow!("{name}: cannot be sent as JSON: {e}"))?;
    // Refused here rather than cut off by the server mid-upload (a broken pipe, not a reason).
    let size = serde_json::to_vec(&json).map_or(0, |b| b.len());
    if size > tollgate_control::ADMIN_MAX_BODY_BYTES {
        bail!(
            "{name} is {size} bytes as JSON; the admin API takes at most {}",
            tollgate_control::ADMIN_MAX_BODY_BYTES
        );
    }
    Ok((text, json))
}

/// The path (`production.max_regression`, `tests[2].weight`) of the first value of `v` that has
/// no JSON form, and why, if any.
fn unsendable(v: &serde_yaml::Value) -> Option<(String, &'static str)> {
    use serde_yaml::Value as Y;
    match v {
        Y::Number(n) => n.as_f64().filter(|f| !f.is_finite()).map(|_| {
            (
                String::new(),
                "is not a finite number (.nan and .inf have no JSON form)",
            )
        }),
        Y::Sequence(items) => items.iter().enumerate().find_map(|(i, item)| {
            unsendable(item).map(|(rest, why)| (format!("[{i}]{}", dotted(&rest)), why))
        }),
        Y::Mapping(map) => map.iter().find_map(|(k, item)| match k {
            Y::String(key) => {
                unsendable(item).map(|(rest, why)| (format!("{key}{}", dotted(&rest)), why))
            }
            other => Some((
                serde_json::to_string(other)
                    .map(|s| tollgate_types::text::clip(&s, tollgate_types::text::ECHO_CHARS))
                    .unwrap_or_default(),
                "is a key that is not a string (quote it)",
            )),
        }),
        Y::Tagged(_) => Some((String::new(), "has a YAML tag; give a plain value")),
        Y::Null | Y::Bool(_) | Y::String(_) => None,
    }
}

/// `rest` joined after a key: `.x` for a key, `[2]` as it is, nothing for nothing.
fn dotted(rest: &str) -> String {
    if rest.is_empty() || rest.starts_with('[') {
        rest.to_string()
    } else {
        format!(".{rest}")
    }
}

#[cfg(test)]
mod yaml_tests {
    use super::unsendable;

    #[test]
    fn what_has_no_json_form_is_named_by_its_path() {
        let cases = [
            (
                "production: { max_regression: .nan }",
                Some("production.max_regression"),
            ),
            ("a: [1, 2, {b: -.inf}]", Some("a[2].b")),
            ("- .inf", Some("[0]")),
            ("x: .Inf", Some("x")),
            ("a: 1.5\nb: [0.0, -2]\nc: '.nan'\n'1': x", None),
            ("a: {b: !custom 0.1}", Some("a.b")),
            ("!custom {a: 1}", Some("")),
            ("a: {1: 2}", Some("a.1")),
            ("- {[1, 2]: x}", Some("[0][1,2]")),
        ];
        for (text, want) in cases {
            let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
            assert_eq!(unsendable(&v).map(|(p, _)| p).as_deref(), want, "{text}");
        }
    }
}
