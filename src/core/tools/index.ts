/**
 * Typed tools: the owner's linters, compilers and test runners declared by manifests (or detected
 * from project files on the owner's opt-in), validated, watched and turned into argv runs with
 * checked arguments. The dispatcher runs them in the session's sandbox under `allow tool(NAME)`.
 */
import type { ParsedResult } from '../../protocol/diagnostics';
import { parseOutput, validateParserSpec } from './parsers';

export { checkArguments, expandArgv, pathArguments, type ArgumentValue, type PathArgument } from './args';
export { DETECTION_FILES } from './detect';
export {
  compileManifest,
  compileMcpServerManifest,
  DEFAULT_MCP_CALL_TIMEOUT_MS,
  DEFAULT_TOOL_TIMEOUT_MS,
  MCP_SERVER_NAME_RE,
  loadPatternEngine,
  ManifestError,
  MAX_MANIFEST_BYTES,
  releaseManifest,
  TOOL_NAME_RE,
  type CompiledManifest,
  type McpServerManifest,
  type ToolManifest,
} from './manifest';
export {
  ToolRegistry,
  TOOLS_FOLDER,
  type RegisteredMcpServer,
  type RegisteredTool,
  type ToolProblem,
  type ToolRegistryOptions,
  type ToolSetChange,
} from './registry';
export { countSeverities, ToolRunFeed, type ToolRunReport } from './runs';

/** A manifest's output parser: `{type, ...options}`, validated by the parsers themselves. */
export interface ParserSpec {
  type: string;
  [option: string]: unknown;
}

/** What a parser is given besides the output: where the workspace is in the container, the run's cwd. */
export interface ParseContext {
  /** Absolute POSIX path of the workspace folder in the container (paths are mapped back from it). */
  containerWorkspace: string;
  /** Workspace-relative working directory of the run. */
  cwd: string;
  /** The tool's name (the source of diagnostics a configurable parser reports). */
  toolName: string;
}

/** The output parsers a server has (a manifest naming a parser is refused without them). */
export interface OutputParsers {
  /** Checks a manifest's parser spec when the manifest loads; throws an Error saying what to fix. */
  validate(spec: ParserSpec): void;
  /**
   * Turns a finished run's output into diagnostics (and test counts); never throws on hostile
   * output. The optional fields say what was dropped or could not be read.
   */
  parse(
    spec: ParserSpec,
    output: { stdout: string; stderr: string; exitCode: number | null },
    ctx: ParseContext,
  ): Pick<ParsedResult, 'diagnostics'> &
    Partial<Pick<ParsedResult, 'truncated' | 'outsideWorkspace' | 'parseError'>> & {
      tests?: ParsedResult['tests'] | undefined;
    };
}

/**
 * The output parsers this server ships (src/core/tools/parsers/): ESLint, tsc, GCC/Clang, a regex
 * problem matcher on the linear-time engine, and test runner summaries.
 */
export const BUILT_IN_PARSERS: OutputParsers = {
  validate: (spec) => void validateParserSpec(spec),
  parse: (spec, output, ctx) => parseOutput(validateParserSpec(spec), output, ctx),
};
