//! Command-line arguments. Parsing here is only shape; meaning is checked by the domain.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "warroom",
    version,
    about = "Self-hosted incident response: from the first alert to the post-mortem."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// warroom server URL.
    #[arg(
        long,
        env = "WARROOM_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API token (create one with `warroom token create`).
    #[arg(long, env = "WARROOM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<crate::secret::Secret>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

impl From<YesNo> for bool {
    fn from(v: YesNo) -> bool {
        matches!(v, YesNo::Yes)
    }
}

/// The decision tree's signals as flags.
#[derive(Debug, Clone, Args, Default)]
pub struct SignalArgs {
    /// Can any users access the service?
    #[arg(long, value_enum)]
    pub users_can_access: Option<YesNo>,
    /// Share of failing requests, 0-100.
    #[arg(long)]
    pub failing_percent: Option<f64>,
    /// Is it recovering on its own?
    #[arg(long, value_enum)]
    pub recovering: Option<YesNo>,
    /// Does it need user action, or lose data?
    #[arg(long, value_enum)]
    pub user_action_or_data_loss: Option<YesNo>,
    /// Current latency ÷ normal latency.
    #[arg(long)]
    pub latency_ratio: Option<f64>,
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Config file (TOML).
    #[arg(long, env = "WARROOM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://...
    #[arg(long = "database")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (and, later, its workers).
    Serve {
        #[command(flatten)]
        server: ServerArgs,
        /// Listen address, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run only the workers (notification delivery, the incident clock), e.g. beside `serve`
    /// on PostgreSQL to scale out.
    Worker {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Manage API tokens directly on the database.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Check or print configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the severity decision tree offline.
    Classify {
        #[command(flatten)]
        signals: SignalArgs,
        /// An explicit severity 1-4 (wins over the tree).
        #[arg(long)]
        severity: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Declare an incident.
    Declare {
        /// Affected service slug.
        #[arg(long)]
        service: String,
        /// Further affected services.
        #[arg(long = "also", value_delimiter = ',')]
        also: Vec<String>,
        /// Brief description; the title becomes `INCIDENT: <Service> - <summary>`.
        #[arg(long)]
        summary: String,
        /// Explicit severity 1-4.
        #[arg(long)]
        severity: Option<i64>,
        #[command(flatten)]
        signals: SignalArgs,
        /// Reporter (defaults to the token's name).
        #[arg(long)]
        reporter: Option<String>,
        /// When the problem was noticed, RFC 3339 (defaults to now).
        #[arg(long)]
        detected_at: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List incidents.
    Incidents {
        /// Filter by status (comma-separated, or `open`).
        #[arg(long)]
        status: Option<String>,
        /// Filter by severity.
        #[arg(long)]
        severity: Option<i64>,
        /// Filter by service.
        #[arg(long)]
        service: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one incident.
    Show {
        number: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Post a status update in the runbook's format.
    Update {
        number: String,
        /// What is being done now.
        #[arg(long = "action")]
        current_action: String,
        /// What has been found.
        #[arg(long)]
        findings: String,
        /// What comes next.
        #[arg(long = "next")]
        next_step: String,
        /// Move to this status first.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a note (or, with --action, an action taken) to the timeline.
    Note {
        number: String,
        text: String,
        #[arg(long)]
        action: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Assign a role: commander, technical_responder, communication_lead, on_call_manager.
    Assign {
        number: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        person: String,
        /// Remove the person from the role instead.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change severity, explicitly or by re-running the tree on new signals.
    Severity {
        number: String,
        #[arg(long)]
        severity: Option<i64>,
        #[command(flatten)]
        signals: SignalArgs,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move an incident through its lifecycle.
    Transition {
        number: String,
        /// declared, investigating, identified, mitigating, monitoring, resolved, closed.
        status: String,
        #[command(flatten)]
        fields: ResolutionArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Shortcut for `transition N resolved`.
    Resolve {
        number: String,
        #[command(flatten)]
        fields: ResolutionArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Shortcut for `transition N closed`.
    Close {
        number: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an incident's timeline.
    Timeline {
        number: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an incident's checklists, or tick an item.
    Checklist {
        number: String,
        /// Tick this item id.
        #[arg(long)]
        tick: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the runbook's messages for an incident (declared, update, status page, escalation, resolved).
    Messages {
        number: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Acknowledge a page: stops the escalation.
    Ack {
        number: String,
        /// Who acknowledges (defaults to the token's name).
        #[arg(long)]
        person: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who is on call now (or at --at), per schedule, with the coverage gaps of the next week.
    Oncall {
        /// RFC 3339 time, e.g. 2026-01-12T14:30:00Z.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every service's health (HEALTHY, DEGRADED, UNHEALTHY), since when and why.
    Health {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Alerts received from Prometheus, Alertmanager and monitors.
    Alerts {
        /// firing or resolved.
        #[arg(long)]
        status: Option<String>,
        /// Only the alerts linked to this incident (all of them, firing first).
        #[arg(long, conflicts_with = "status")]
        incident: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Monitors with their availability over 24 hours and 30 days; add or remove API monitors.
    Monitors {
        #[command(subcommand)]
        command: Option<MonitorsCommand>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Silences and maintenance windows (the config's and the API's); add or expire API ones.
    Silences {
        #[command(subcommand)]
        command: Option<SilencesCommand>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Post-mortems: draft, parse follow-ups, mark items.
    Postmortem {
        #[command(subcommand)]
        command: PostmortemCommand,
    },
    /// The static post-mortem site.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Follow-up automation: implement safe post-mortem follow-ups, push, publish.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Queue a run and execute it here, printing its log as it goes.
    Run {
        /// The repository clone (default: [pipeline] repo from the config).
        #[arg(long)]
        repo: Option<PathBuf>,
        /// Print what would be done (items in order, commit messages) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan (with --dry-run) or the finished run as JSON on stdout; the log
        /// still goes to stderr.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Recent runs with their status and progress.
    Status {
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// A run's log.
    Log {
        run: i64,
        /// Keep printing new lines until the run ends.
        #[arg(long)]
        follow: bool,
        /// Print the run and its log lines as JSON (not with --follow).
        #[arg(long, conflicts_with = "follow")]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Let automation implement an item it would not take on its own (Architecture, Migration,
    /// ...); it then goes through the same guardrails.
    Approve {
        /// Item id, as `warroom postmortem todos` prints it.
        item: String,
        /// Who approves (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// The repository clone (default: [pipeline] repo from the config).
        #[arg(long)]
        repo: Option<PathBuf>,
        /// Print the approval, the item and the queued run as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MonitorsCommand {
    /// Create a monitor through the API from a file holding one monitor in the `[[monitors]]`
    /// format (TOML, or JSON when the name ends in .json); the server starts it within a second.
    Add { file: PathBuf },
    /// Delete an API monitor (config monitors are changed in the config file).
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
pub enum SilencesCommand {
    /// Mute matching alerts from now on: `warroom silences add service=db --for 2h --comment
    /// "failover"`. Matchers as in Alertmanager: `name=value`, `name!=value`, `name=~regex`,
    /// `name!~regex`; all must match.
    Add {
        /// One or more matchers.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long: `90s`, `30m`, `2h`, `1d`.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why; shown next to the muted alerts.
        #[arg(long)]
        comment: String,
    },
    /// End a silence now; the firing alerts it held back are acted on within a second.
    Expire { id: String },
}

#[derive(Debug, Subcommand)]
pub enum PostmortemCommand {
    /// Draft the post-mortem of an incident into the server's post-mortem folder.
    New {
        number: String,
        /// Do not commit, even in a git work tree.
        #[arg(long)]
        no_commit: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Parse post-mortems and list their follow-ups.
    Parse {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Every pending follow-up in a folder of post-mortems, P0 first.
    Todos {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Change one follow-up's status in place, leaving every other byte alone.
    Mark {
        file: PathBuf,
        /// Item id, as `parse` prints it.
        item: String,
        #[arg(long, value_enum)]
        status: MarkStatus,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MarkStatus {
    Done,
    NeedsHumanReview,
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Write index.html and one page per post-mortem.
    Build {
        #[arg(long)]
        postmortems: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args, Default)]
pub struct ResolutionArgs {
    /// A note for the timeline.
    #[arg(long)]
    pub note: Option<String>,
    #[arg(long)]
    pub root_cause: Option<String>,
    #[arg(long = "fix")]
    pub fix_applied: Option<String>,
    #[arg(long)]
    pub verification: Option<String>,
    /// Who was affected.
    #[arg(long)]
    pub impact_who: Option<String>,
    /// How many were affected.
    #[arg(long)]
    pub impact_count: Option<String>,
    /// For how long.
    #[arg(long)]
    pub impact_duration: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once on stdout.
    Create {
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file; errors name the key.
    Check {
        #[arg(value_name = "FILE", required_unless_present = "config")]
        file: Option<PathBuf>,
        /// The file as `serve --config` takes it (the same as giving FILE).
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        config: Option<PathBuf>,
    },
    /// Print the commented example config.
    Example,
}
