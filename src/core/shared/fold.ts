/** Unicode code points that file systems such as HFS+ ignore in names (zero-width joiners, BOM, ...). */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The form in which two path names are "the same file" on a case-insensitive or normalising file
 * system (APFS, HFS+, NTFS, exFAT/vfat, ext4 casefold): NFC, default-ignorable code points removed,
 * full case folding (upper then lower, so `ß` and `SS` meet). `.GIT/config`, `.git\u200c/config` and
 * `.git/config` all fold to `.git/config`. Used where a name decides protection, never to name files.
 */
export function foldPathName(name: string): string {
  // Printable ASCII has no compositions and no ignorable code points, and folds by lower-casing.
  if (PRINTABLE_ASCII.test(name)) return name.toLowerCase();
  return name.normalize('NFC').replace(IGNORABLE, '').toUpperCase().toLowerCase().normalize('NFC');
}
