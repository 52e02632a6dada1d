/**
 * Typed tools: the owner's linters, compilers and test runners declared by manifests (or detected
 * from project files on the owner's opt-in), validated, watched and turned into argv runs with
 * checked arguments. The dispatcher runs them in the session's sandbox under `allow tool(NAME)`.
 */
import type { Diagnostic } from '../../protocol/tools';

export { checkArguments, expandArgv, pathArguments, type ArgumentValue, type PathArgument } from './args';
export { DETECTION_FILES } from './detect';
export {
  compileManifest,
  DEFAULT_TOOL_TIMEOUT_MS,
  ManifestError,
  MAX_MANIFEST_BYTES,
  releaseManifest,
  TOOL_NAME_RE,
  type CompiledManifest,
  type ToolManifest,
} from './manifest';
export {
  ToolRegistry,
  TOOLS_FOLDER,
  type RegisteredTool,
  type ToolProblem,
  type ToolRegistryOptions,
  type ToolSetChange,
} from './registry';

/** A manifest's output parser: `{type, ...options}`, validated by the parser itself. */
export interface ParserSpec {
  type: string;
  [option: string]: unknown;
}

/**
 * Turns a finished tool run's output into diagnostics (and test counts); `containerWorkspace` is the
 * workspace folder inside the container, mapped back to workspace-relative paths.
 */
export type ParseOutput = (
  parser: ParserSpec,
  output: { stdout: string; stderr: string; exitCode: number | null },
  ctx: { containerWorkspace: string },
) => { diagnostics: Diagnostic[]; tests?: { passed: number; failed: number; skipped: number } };
