import * as vscode from 'vscode';
import { CURSOR_COLORS, type RemoteCursor } from './presence';

/** A remote cursor placed in one editor. */
export interface PlacedCursor {
  cursor: RemoteCursor;
  /** The selection (empty for a caret). */
  range: vscode.Range;
  /** Where the name label goes (the head). */
  head: vscode.Position;
}

/**
 * Decorations of remote cursors and selections: one selection and one caret decoration type per
 * colour, the user's name as a label after the head.
 */
export class CursorDecorations implements vscode.Disposable {
  private readonly selections = CURSOR_COLORS.map((color) =>
    vscode.window.createTextEditorDecorationType({
      backgroundColor: `${color}40`,
      borderRadius: '2px',
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    }),
  );
  private readonly carets = CURSOR_COLORS.map((color) =>
    vscode.window.createTextEditorDecorationType({
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      before: {
        contentText: '',
        border: `1px solid ${color}`,
        margin: '0 -1px 0 0',
        height: '100%',
      },
      after: {
        backgroundColor: color,
        color: '#ffffff',
        margin: '0 0 0 1px',
        fontWeight: 'normal',
        textDecoration: 'none; border-radius: 3px; padding: 0 3px; font-size: 0.85em;',
      },
    }),
  );

  /** Shows `placed` in `editor`, replacing what was shown there. */
  render(editor: vscode.TextEditor, placed: readonly PlacedCursor[]): void {
    CURSOR_COLORS.forEach((_color, index) => {
      const mine = placed.filter((p) => p.cursor.color === index);
      editor.setDecorations(
        this.selections[index]!,
        mine.filter((p) => !p.range.isEmpty).map((p) => p.range),
      );
      editor.setDecorations(
        this.carets[index]!,
        mine.map((p) => ({
          range: new vscode.Range(p.head, p.head),
          hoverMessage: p.cursor.name,
          renderOptions: { after: { contentText: p.cursor.name } },
        })),
      );
    });
  }

  /** Removes every remote cursor from `editor`. */
  clear(editor: vscode.TextEditor): void {
    this.render(editor, []);
  }

  dispose(): void {
    for (const type of [...this.selections, ...this.carets]) type.dispose();
  }
}
