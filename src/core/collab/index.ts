/**
 * Shared documents (issue 11): y-websocket-compatible Yjs documents per workspace file, loaded and
 * written through the confined file layer, with server-stamped presence and batched edit audit.
 */
export { CollabHub, type CollabHubOptions } from './hub';
export { closeReason } from './document';
export { changedRegion, mergeText, replaceText, type TextChange } from './text';
export { mergeInGroups } from './updates';
export {
  CLOSE_CODES,
  DEFAULT_COLLAB_LIMITS,
  type CollabAccess,
  type CollabAuditor,
  type CollabClient,
  type CollabConnection,
  type CollabLimits,
  type CollabPeer,
  type DocumentHolder,
  type EditBatch,
  type OpenDocuments,
} from './types';
