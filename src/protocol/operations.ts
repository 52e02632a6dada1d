import { z } from 'zod';
import { PAIR_DEFAULT_TTL_SECONDS, PAIR_MAX_TTL_SECONDS } from './pair';

/**
 * One zod schema per operation: the single source from which the MCP tools, the REST routes and
 * their validation, and the OpenAPI document are derived. A field is added here and nowhere else.
 */

const path = z.string().describe('Workspace-relative path (posix separators); "." is the workspace root.');
const revision = z.string().describe('Content revision: the sha256 hex of the file bytes.');
const expectedRevision = z
  .string()
  .optional()
  .describe(
    'Fail with REVISION_CONFLICT unless the file is still at this revision ("none": must not exist).',
  );
const encoding = z.enum(['utf8', 'base64']);
const entryType = z.enum(['file', 'directory', 'symlink', 'other']);

const capabilities = z.object({
  tools: z.array(z.string()).describe('Operations this session may call.'),
  workspaceId: z.string().describe('Stable id of the served workspace: pass it to join_workspace.'),
});

const sessionInfo = z.object({
  sessionId: z.string(),
  capabilities: z.array(z.string()),
  agent: z.string(),
  role: z.enum(['owner', 'agent', 'viewer']),
});

const warnings = z
  .array(z.string())
  .optional()
  .describe(
    'Things the caller should know although the call succeeded (e.g. a write into another agent’s lease).',
  );

const leaseId = z.string().min(1).max(100);
const lease = z.object({
  id: leaseId,
  holder: z.string().describe('Agent holding the lease ("owner" for the workspace owner).'),
  paths: z.array(z.string()).describe('Workspace path globs the lease covers.'),
  reason: z.string(),
  acquiredAt: z.string(),
  expiresAt: z.string(),
  idle: z
    .boolean()
    .describe('The holder has been idle past the grace period: acquire_lease with takeOver may take it.'),
});

const member = z.object({
  agent: z.string(),
  role: z.enum(['owner', 'agent', 'viewer']),
  transport: z.string(),
  joinedAt: z.string(),
});

const message = z.object({
  id: z.string(),
  from: z.string().describe('Sending agent ("owner" for the workspace owner).'),
  to: z.string().nullable().describe('The one agent it was sent to, or null for everyone.'),
  message: z.string(),
  sentAt: z.string(),
});

const presenceEntry = z.object({
  agent: z.string().describe('Agent name ("owner" for the workspace owner).'),
  role: z.enum(['owner', 'agent', 'viewer']),
  joined: z.boolean().describe('At least one of its sessions joined the workspace (receives broadcasts).'),
  sessions: z
    .array(
      z.object({
        transport: z.string().describe('mcp | mcp-2026 | rest | ws | collab | vscode | ...'),
        clientName: z.string().optional(),
        sessionId: z.string().optional().describe('Shown to the owner only.'),
        lastActivityAt: z.string(),
      }),
    )
    .describe('Its live sessions (a collaborative editor is a `collab` session).'),
  openFiles: z
    .array(z.object({ path, readOnly: z.boolean() }))
    .describe('Files it has open as shared documents (only those you may read).'),
  lastFile: z
    .object({ path, action: z.enum(['read', 'write']), at: z.string() })
    .nullable()
    .describe('The last file it read or wrote through MCP, REST or WebSocket (null if none you may read).'),
  activity: z
    .object({
      state: z.enum(['editing', 'running', 'idle']),
      path: path.optional().describe('The file being edited (absent when you may not read it).'),
      executionId: z.string().optional(),
      command: z.string().optional().describe('Summary of the running command.'),
      since: z.string().optional().describe('Editing: the latest edit; running: when the command started.'),
    })
    .describe(
      'Editing: a shared-document update or a write in the last few seconds; running: a command in its container; else idle.',
    ),
  running: z
    .array(z.object({ executionId: z.string(), command: z.string(), startedAt: z.string() }))
    .describe('Its running commands.'),
  lastActivityAt: z.string(),
});

const policy = z.object({
  id: z.string().describe('Policy identifier.'),
  rules: z
    .array(z.string())
    .describe(
      'Rules "allow|deny ACTION(PATTERN) [@ROLE|@agent:NAME|@pair:NAME]"; deny wins; no match is denied.',
    ),
});

const policyDecision = z.object({
  allowed: z.boolean(),
  rule: z.string().nullable(),
  ruleIndex: z.number().int().nullable(),
  reason: z.string(),
});

const executionResult = z.object({
  executionId: z.string(),
  status: z.enum(['running', 'exited', 'killed', 'timed_out', 'cancelled', 'failed']),
  exitCode: z
    .number()
    .int()
    .nullable()
    .describe('Exit status; null while running or when killed by a signal.'),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  cancelled: z.boolean(),
  oomKilled: z.boolean().describe('Killed by the kernel for exceeding the memory limit.'),
  truncated: z.boolean().describe('Output beyond the cap was dropped.'),
  durationMs: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  logs: z.array(z.string()).describe('Output lines of both streams in the order they were produced.'),
  image: z.string(),
  error: z.string().optional(),
});
const executionId = z.string().min(1).max(100);

const auditDecision = z.object({
  action: z.string().describe('The policy action asked about: read, write, exec, env, network, tool.'),
  target: z
    .string()
    .describe('The target as the policy saw it (a path, a command, an env name...), redacted.'),
  decision: z.enum(['allow', 'deny']),
  rule: z.string().nullable().describe('The rule that decided, or null (deny by default).'),
});

const auditRecord = z.object({
  seq: z.number().int().describe('1-based sequence number, contiguous.'),
  ts: z.string().describe('ISO timestamp; never decreases along the log.'),
  prev: z.string().describe('Hash of the previous record (64 zeros for the first).'),
  hash: z.string().describe("sha256 hex of this record's canonical JSON without `hash`."),
  v: z.literal(2).optional().describe('Record format version: 2, or absent for version 1 records.'),
  sessionId: z.string().nullable().describe('Session the action belongs to, or null outside a session.'),
  agent: z.string().describe('Principal name.'),
  role: z.string().describe('Principal role: owner | agent | viewer.'),
  transport: z.string().describe('Transport the request came in on: mcp | rest | ws | vscode | ...'),
  op: z.string().describe('Operation name, e.g. `write_file`.'),
  params: z.unknown().describe('Request parameters, redacted.'),
  decision: z
    .enum(['allow', 'deny'])
    .describe('Whether policy allowed the action (the refusing decision, else the last).'),
  rule: z.string().nullable().describe('The policy rule that decided, or null (deny by default).'),
  decisions: z
    .array(auditDecision)
    .optional()
    .describe('Every policy decision the operation made, in order (version 2 records).'),
  outcome: z
    .object({ ok: z.boolean(), code: z.string().optional(), message: z.string().optional() })
    .catchall(z.unknown())
    .describe('What happened, redacted.'),
  durationMs: z.number().describe('Wall time the action took, in milliseconds.'),
});

/** One committed audit record as every transport returns it (the hash chain's unit). */
export type AuditRecordData = z.output<typeof auditRecord>;
/** One policy decision listed in a version 2 audit record. */
export type AuditDecisionData = z.output<typeof auditDecision>;

/** MCP tool annotations (VS Code asks the user to confirm every tool not marked read-only). */
export interface OperationAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** Where an operation lives on the REST surface; `{path}` is a wildcard workspace path. */
export interface RestRoute {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
}

/** The static description of one operation. */
export interface OperationDef<I extends z.ZodObject = z.ZodObject, O extends z.ZodType = z.ZodType> {
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: OperationAnnotations;
  rest: RestRoute;
  /** Exposed as an MCP tool (owner-only tools are listed only for the owner). */
  mcpTool: boolean;
  /** Only the owner token may call it (agents never change their own policy or tokens). */
  ownerOnly: boolean;
  /** Which per-session token bucket the call draws from, if any. */
  rateLimit: 'write' | 'exec' | null;
}

const READ: OperationAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};
const WRITE: OperationAnnotations = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: true,
  openWorldHint: false,
};
const ADDITIVE: OperationAnnotations = { ...WRITE, destructiveHint: false };

function op<I extends z.ZodObject, O extends z.ZodType>(
  def: Omit<OperationDef<I, O>, 'mcpTool' | 'ownerOnly' | 'rateLimit'> &
    Partial<Pick<OperationDef<I, O>, 'mcpTool' | 'ownerOnly' | 'rateLimit'>>,
): OperationDef<I, O> {
  return { mcpTool: true, ownerOnly: false, rateLimit: null, ...def };
}

/** Every operation the server offers, by its snake_case name. */
export const OPERATIONS = {
  init_session: op({
    title: 'Initialize session',
    description:
      'InitSession: declare the tools you want; the session gets those the server offers and the policy allows.',
    input: z.object({ tools: z.array(z.string()).optional().describe('Requested tools; omit for all.') }),
    output: sessionInfo,
    annotations: ADDITIVE,
    rest: { method: 'post', path: '/session/init' },
    mcpTool: false,
  }),
  list_capabilities: op({
    title: 'List capabilities',
    description: 'ListCapabilities: the tools this session negotiated.',
    input: z.object({}),
    output: capabilities,
    annotations: READ,
    rest: { method: 'get', path: '/capabilities' },
  }),
  read_file: op({
    title: 'Read file',
    description:
      'GetFile: read a workspace file. Text comes back as utf8, binary as base64, with its revision for later writes.',
    input: z.object({ path, encoding: encoding.optional().describe('Force an encoding; default auto.') }),
    output: z.object({ path, content: z.string(), encoding, revision, size: z.number().int() }),
    annotations: READ,
    rest: { method: 'get', path: '/files/{path}' },
  }),
  write_file: op({
    title: 'Write file',
    description:
      'WriteFile: create or replace a file atomically. Pass expectedRevision (from read_file) to avoid overwriting concurrent changes.',
    input: z.object({
      path,
      content: z.string().describe('File content, utf8 text or base64 when encoding is base64.'),
      encoding: encoding.optional(),
      expectedRevision,
    }),
    output: z.object({ path, revision, bytes: z.number().int(), created: z.boolean(), warnings }),
    annotations: WRITE,
    rest: { method: 'put', path: '/files/{path}' },
    rateLimit: 'write',
  }),
  list_files: op({
    title: 'List files',
    description:
      'ListFiles: list a directory, recursively up to depth (skips .git and node_modules contents).',
    input: z.object({
      path: path.default('.'),
      depth: z.number().int().min(1).max(20).optional().describe('Levels to descend (default 1).'),
      includeIgnored: z.boolean().optional().describe('Also descend into .git and node_modules.'),
    }),
    output: z.object({
      path,
      entries: z.array(
        z.object({
          path,
          name: z.string(),
          type: entryType,
          size: z.number().optional(),
          mtimeMs: z.number(),
        }),
      ),
      truncated: z.boolean(),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/list/{path}' },
  }),
  file_info: op({
    title: 'File info',
    description: 'Stat a path: type, size, modification time and (for files) revision.',
    input: z.object({ path }),
    output: z.object({
      path,
      type: entryType,
      size: z.number(),
      mtimeMs: z.number(),
      revision: revision.optional(),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/stat/{path}' },
  }),
  edit_file: op({
    title: 'Edit file',
    description:
      'Apply exact-text replacements in order (each oldText must match once unless replaceAll). dryRun returns the diff and changes nothing.',
    input: z.object({
      path,
      edits: z
        .array(
          z.object({
            oldText: z.string().min(1),
            newText: z.string(),
            replaceAll: z.boolean().optional(),
          }),
        )
        .min(1)
        .max(100),
      dryRun: z.boolean().optional(),
      expectedRevision,
    }),
    output: z.object({
      path,
      revision,
      diff: z.string(),
      applied: z.number().int(),
      dryRun: z.boolean(),
      warnings,
    }),
    annotations: WRITE,
    rest: { method: 'post', path: '/edit' },
    rateLimit: 'write',
  }),
  search_files: op({
    title: 'Search files',
    description:
      'Search text or a regex (Rust/RE2 syntax: no backreferences or look-around) across workspace files, honouring .gitignore; results are capped and time-limited.',
    input: z.object({
      query: z.string().min(1).max(1000),
      path: path.optional(),
      regex: z.boolean().optional(),
      caseSensitive: z.boolean().optional(),
      glob: z.string().max(500).optional().describe('Only files whose relative path matches this glob.'),
      maxResults: z.number().int().min(1).max(1000).optional(),
    }),
    output: z.object({
      matches: z.array(
        z.object({ path, line: z.number().int(), column: z.number().int(), text: z.string() }),
      ),
      truncated: z.boolean(),
      truncatedReason: z
        .enum(['max_results', 'deadline'])
        .optional()
        .describe('Why the search stopped early: the result cap, or its time limit (results so far).'),
      filesScanned: z.number().int(),
    }),
    annotations: READ,
    rest: { method: 'post', path: '/search' },
  }),
  create_directory: op({
    title: 'Create directory',
    description: 'Create a directory (and missing parents).',
    input: z.object({ path }),
    output: z.object({ path, created: z.boolean(), warnings }),
    annotations: ADDITIVE,
    rest: { method: 'post', path: '/mkdir' },
    rateLimit: 'write',
  }),
  delete_file: op({
    title: 'Delete file',
    description: 'Delete a file, a symlink, or a directory (recursive required when not empty).',
    input: z.object({ path, recursive: z.boolean().optional(), expectedRevision }),
    output: z.object({ path, deleted: z.literal(true), warnings }),
    annotations: WRITE,
    rest: { method: 'delete', path: '/files/{path}' },
    rateLimit: 'write',
  }),
  move_file: op({
    title: 'Move file',
    description: 'Move or rename a file or directory inside the workspace.',
    input: z.object({ from: path, to: path, overwrite: z.boolean().optional(), expectedRevision }),
    output: z.object({ from: path, to: path, warnings }),
    annotations: { ...WRITE, idempotentHint: false },
    rest: { method: 'post', path: '/move' },
    rateLimit: 'write',
  }),
  run_command: op({
    title: 'Run command',
    description:
      "RunCommand: run a command in the workspace's dev container (never on the host). Under a narrow exec rule the command is split into words and run with no shell (shell syntax needs allow exec(*), which runs it through sh -c); with args it always runs directly. Output streams as progress notifications; background: true returns at once with the executionId.",
    input: z.object({
      command: z.string().min(1).max(100_000),
      args: z
        .array(z.string().max(100_000))
        .max(1000)
        .optional()
        .describe('Run command directly with these arguments.'),
      cwd: path.optional().describe('Working directory, workspace-relative (default the root).'),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(100_000)).optional(),
      timeoutMs: z.number().int().min(1).max(3_600_000).optional().describe('Default 120000.'),
      stdin: z
        .string()
        .max(10 * 1024 * 1024)
        .optional(),
      background: z.boolean().optional().describe('Return immediately; poll with get_execution.'),
    }),
    output: executionResult,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    rest: { method: 'post', path: '/execute' },
    rateLimit: 'exec',
  }),
  cancel_execution: op({
    title: 'Cancel execution',
    description: 'CancelExecution: TERM to the whole process tree, KILL after a grace period.',
    input: z.object({ executionId }),
    output: z.object({ success: z.boolean(), message: z.string() }),
    annotations: { ...WRITE, destructiveHint: false },
    rest: { method: 'post', path: '/executions/{executionId}/cancel' },
  }),
  get_execution: op({
    title: 'Get execution',
    description: 'Status and output of an execution; wait: true blocks until it finishes.',
    input: z.object({ executionId, wait: z.boolean().optional() }),
    output: executionResult,
    annotations: READ,
    rest: { method: 'get', path: '/executions/{executionId}' },
  }),
  list_executions: op({
    title: 'List executions',
    description: 'Your executions (the owner sees all), newest first.',
    input: z.object({}),
    output: z.object({
      executions: z.array(
        z.object({
          executionId: z.string(),
          agent: z.string(),
          sessionId: z.string(),
          command: z.string(),
          status: executionResult.shape.status,
          startedAt: z.string(),
        }),
      ),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/executions' },
  }),
  get_policies: op({
    title: 'Get policies',
    description: 'GetPolicies: the rules in force (deny by default; deny wins over allow).',
    input: z.object({}),
    output: z.object({ policies: z.array(policy) }),
    annotations: READ,
    rest: { method: 'get', path: '/policies' },
  }),
  explain_policy: op({
    title: 'Explain a policy decision',
    description: 'Which rule decides ACTION(target) for you (or, for the owner, for a named agent).',
    input: z.object({
      action: z.enum(['read', 'write', 'exec', 'network', 'tool', 'env', 'lease-conflict']),
      target: z.string().max(4096),
      agent: z.string().optional().describe('Owner only: explain for this agent token instead.'),
    }),
    output: policyDecision,
    annotations: READ,
    rest: { method: 'post', path: '/policies/explain' },
  }),
  set_policy: op({
    title: 'Set policy',
    description: 'SetPolicy (owner only): replace the policy. Agents can never change their own policy.',
    input: policy,
    output: z.object({ success: z.boolean(), message: z.string() }),
    annotations: { ...WRITE, idempotentHint: true },
    rest: { method: 'put', path: '/policies' },
    ownerOnly: true,
  }),
  create_token: op({
    title: 'Create agent token',
    description: 'Owner only: mint a bearer token for a named agent with a role. The token is shown once.',
    input: z.object({ name: z.string(), role: z.enum(['agent', 'viewer']) }),
    output: z.object({ token: z.string(), name: z.string(), role: z.enum(['agent', 'viewer']) }),
    annotations: ADDITIVE,
    rest: { method: 'post', path: '/tokens' },
    ownerOnly: true,
    mcpTool: false,
  }),
  revoke_token: op({
    title: 'Revoke agent token',
    description: "Owner only: revoke an agent's token; its open sessions end at once.",
    input: z.object({ name: z.string() }),
    output: z.object({ success: z.boolean(), message: z.string() }),
    annotations: WRITE,
    rest: { method: 'delete', path: '/tokens/{name}' },
    ownerOnly: true,
    mcpTool: false,
  }),
  create_pair_link: op({
    title: 'Create pair link',
    description:
      'Owner only: mint a scoped, expiring token for a human pair partner (file operations and live co-editing, never commands) and the link their VS Code opens with "Join Pair Session". Revoke it with revoke_token and its id.',
    input: z.object({
      mode: z.enum(['read-write', 'read-only']).describe('read-write: role agent; read-only: role viewer.'),
      ttlSeconds: z
        .number()
        .int()
        .min(1)
        .max(PAIR_MAX_TTL_SECONDS)
        .default(PAIR_DEFAULT_TTL_SECONDS)
        .describe('Lifetime of the link (default one hour, at most one day).'),
      name: z.string().optional().describe('Guest name (default guest-XXXX); the principal is pair:<name>.'),
    }),
    output: z.object({
      link: z.string().describe('vscode:// URI for the guest (also accepted pasted as text).'),
      token: z.string(),
      expiresAt: z.string(),
      id: z.string().describe('The guest principal and token name, pair:<name>: revoke_token takes it.'),
    }),
    annotations: { ...ADDITIVE, idempotentHint: false },
    rest: { method: 'post', path: '/pair-links' },
    ownerOnly: true,
    mcpTool: false,
  }),
  list_tokens: op({
    title: 'List agent tokens',
    description: 'Owner only: the agent tokens (names and roles, never the secrets).',
    input: z.object({}),
    output: z.object({
      tokens: z.array(
        z.object({
          name: z.string(),
          role: z.enum(['agent', 'viewer']),
          createdAt: z.string(),
          expiresAt: z.string().optional().describe('Pair tokens: when the token stops working.'),
        }),
      ),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/tokens' },
    ownerOnly: true,
    mcpTool: false,
  }),
  list_sessions: op({
    title: 'List sessions',
    description: 'Owner only: open sessions with agent, role, transport and last activity.',
    input: z.object({}),
    output: z.object({
      sessions: z.array(
        z.object({
          sessionId: z.string(),
          agent: z.string(),
          role: z.string(),
          transport: z.string(),
          clientName: z.string().optional(),
          capabilities: z.array(z.string()),
          createdAt: z.string(),
          lastActivityAt: z.string(),
        }),
      ),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/sessions' },
    ownerOnly: true,
    mcpTool: false,
  }),
  revoke_session: op({
    title: 'Revoke session',
    description:
      'Owner only: end one session at once (its token stays valid; revoke the token to keep the agent out).',
    input: z.object({ sessionId: z.string() }),
    output: z.object({ success: z.boolean(), message: z.string() }),
    annotations: WRITE,
    rest: { method: 'delete', path: '/sessions/{sessionId}' },
    ownerOnly: true,
    mcpTool: false,
  }),
  join_workspace: op({
    title: 'Join workspace',
    description:
      'JoinWorkspace: make this session a member of the workspace (workspaceId from list_capabilities): it then receives broadcast_message deliveries. Returns the session and the current members.',
    input: z.object({ workspaceId: z.string().min(1).max(200) }),
    output: sessionInfo.extend({
      workspaceId: z.string(),
      members: z.array(member).describe('Sessions that have joined, yours included.'),
    }),
    annotations: { ...READ, idempotentHint: true },
    rest: { method: 'post', path: '/workspace/join' },
  }),
  broadcast_message: op({
    title: 'Broadcast message',
    description:
      'BroadcastMessage: send a short text to every other member session of the workspace (and the VS Code user), or with `to` to one agent. Members receive it as a notification, a WebSocket event or in their inbox (read_inbox).',
    input: z.object({
      message: z.string().min(1).max(16_384).describe('Plain text, at most 16 KiB.'),
      to: z.string().min(1).max(64).optional().describe('Only this agent ("owner" for the VS Code user).'),
    }),
    output: z.object({
      id: z.string(),
      delivered: z.number().int().describe('Recipients reached: member sessions, plus the VS Code user.'),
    }),
    annotations: { ...ADDITIVE, idempotentHint: false },
    rest: { method: 'post', path: '/messages' },
    rateLimit: 'write',
  }),
  read_inbox: op({
    title: 'Read inbox',
    description:
      'Messages delivered to you (the newest 100, oldest first); the owner may read any agent’s inbox. Also the MCP resource inbox://<agent>.',
    input: z.object({
      agent: z
        .string()
        .min(1)
        .max(64)
        .optional()
        .describe('Whose inbox (default your own; others: owner only).'),
      after: z.string().optional().describe('Only messages sent after the message with this id.'),
    }),
    output: z.object({ agent: z.string(), messages: z.array(message) }),
    annotations: READ,
    rest: { method: 'get', path: '/inbox' },
  }),
  acquire_lease: op({
    title: 'Acquire lease',
    description:
      'Lease workspace paths (globs) for a while so others know you are changing them: their writes there get a warning, or are refused when the owner made leases exclusive. takeOver: true takes over a lease whose holder has gone idle.',
    input: z.object({
      paths: z
        .array(z.string().min(1).max(500))
        .min(1)
        .max(32)
        .describe('Workspace path globs, e.g. "src/api/**".'),
      ttlSeconds: z
        .number()
        .int()
        .min(1)
        .max(86_400)
        .optional()
        .describe('Lifetime until renewed (default 300).'),
      reason: z.string().min(1).max(500).describe('What you are doing, shown to the others.'),
      takeOver: z.boolean().optional().describe('Take over overlapping leases whose holders have gone idle.'),
    }),
    output: lease.extend({
      takenOver: z.array(z.object({ id: leaseId, holder: z.string() })).optional(),
    }),
    annotations: { ...ADDITIVE, idempotentHint: false },
    rest: { method: 'post', path: '/leases' },
    rateLimit: 'write',
  }),
  renew_lease: op({
    title: 'Renew lease',
    description: 'Extend one of your leases by ttlSeconds from now (default: its original TTL).',
    input: z.object({ leaseId, ttlSeconds: z.number().int().min(1).max(86_400).optional() }),
    output: lease,
    annotations: { ...ADDITIVE, idempotentHint: true },
    rest: { method: 'post', path: '/leases/{leaseId}/renew' },
    rateLimit: 'write',
  }),
  release_lease: op({
    title: 'Release lease',
    description: 'End one of your leases now (the owner may release anyone’s).',
    input: z.object({ leaseId }),
    output: z.object({ success: z.boolean(), message: z.string() }),
    annotations: { ...ADDITIVE, idempotentHint: true },
    rest: { method: 'delete', path: '/leases/{leaseId}' },
  }),
  list_leases: op({
    title: 'List leases',
    description:
      'Every live lease of the workspace: holder, paths, reason, expiry, and whether it may be taken over.',
    input: z.object({}),
    output: z.object({ leases: z.array(lease) }),
    annotations: READ,
    rest: { method: 'get', path: '/leases' },
  }),
  list_presence: op({
    title: 'List presence',
    description:
      'Who is working in the workspace now: each agent and human with its sessions, the files it has open as shared documents, the last file it touched, what it is doing (editing, running a command, idle), and the live leases. Files you may not read are left out.',
    input: z.object({}),
    output: z.object({
      agents: z.array(presenceEntry),
      leases: z.array(lease).describe('Live leases (only the paths you may read).'),
      generatedAt: z.string(),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/presence' },
  }),
  query_audit: op({
    title: 'Query audit log',
    description:
      'Audit records, newest first, paged with before/nextBefore. The owner sees every record; agents see their own.',
    input: z.object({
      sessionId: z.string().optional(),
      agent: z.string().optional(),
      op: z.string().optional(),
      decision: z.enum(['allow', 'deny']).optional(),
      since: z.string().optional().describe('ISO timestamp, inclusive.'),
      until: z.string().optional().describe('ISO timestamp, inclusive.'),
      text: z.string().max(200).optional(),
      before: z.number().int().positive().optional(),
      limit: z.number().int().min(1).max(1000).optional(),
    }),
    output: z.object({ records: z.array(auditRecord), nextBefore: z.number().int().nullable() }),
    annotations: READ,
    rest: { method: 'get', path: '/audit' },
    mcpTool: false,
  }),
  verify_audit: op({
    title: 'Verify audit log',
    description: 'Owner only: check the hash chain; names the first bad record.',
    input: z.object({}),
    output: z.object({
      ok: z.boolean(),
      records: z.number().int(),
      head: z.string().optional(),
      badSeq: z.number().int().optional(),
      reason: z.string().optional(),
    }),
    annotations: READ,
    rest: { method: 'get', path: '/audit/verify' },
    ownerOnly: true,
    mcpTool: false,
  }),
} as const;

/** All operation names. */
export type OperationName = keyof typeof OPERATIONS;
/** Parsed input of an operation. */
export type OperationInput<N extends OperationName> = z.output<(typeof OPERATIONS)[N]['input']>;
/** Result of an operation. */
export type OperationOutput<N extends OperationName> = z.output<(typeof OPERATIONS)[N]['output']>;

/** Operation names in declaration order. */
export const OPERATION_NAMES = Object.keys(OPERATIONS) as OperationName[];

/** Names of operations exposed as MCP tools. */
export const MCP_TOOL_NAMES = OPERATION_NAMES.filter((n) => OPERATIONS[n].mcpTool);

/** Operations that a session negotiates (everything except session bootstrap). */
export const NEGOTIABLE_OPERATIONS = OPERATION_NAMES.filter((n) => n !== 'init_session');

/** Exported schema pieces reused by transports. */
export const schemas = {
  policy,
  auditRecord,
  sessionInfo,
  capabilities,
  executionResult,
  lease,
  message,
  member,
  presenceEntry,
};
