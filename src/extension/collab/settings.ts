import type { SettingLevels } from '../settings';

/** The setting that turns live co-editing of open editors on or off. */
export const LIVE_EDITING_SETTING = 'liveEditing';

/**
 * Whether open editors are bound live, from the levels `inspect('liveEditing')` reports: the user's
 * value (default on); a workspace or folder may only turn it off, never on.
 */
export function readLiveEditing(levels: SettingLevels | undefined): boolean {
  const user = levels?.globalValue ?? levels?.defaultValue;
  const enabled = typeof user === 'boolean' ? user : true;
  return enabled && levels?.workspaceValue !== false && levels?.workspaceFolderValue !== false;
}
