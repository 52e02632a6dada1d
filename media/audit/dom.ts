/// <reference lib="dom" />
/**
 * Small DOM helpers of the audit webview. Records hold agent-controlled strings: they only ever reach
 * the DOM as textContent (and attribute values), never as markup.
 */

/** Properties of an element made by {@link h}. */
export interface Props {
  className?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string>;
}

/** A new element with the given properties and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title !== undefined) node.title = props.title;
  for (const [k, v] of Object.entries(props.attrs ?? {})) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** An `<option>` of a select or datalist. */
export function option(value: string, label: string): HTMLOptionElement {
  const o = h('option', { text: label });
  o.value = value;
  return o;
}

/** `fn`, run `ms` after the last call; `flush()` runs a pending call now. */
export function debounce(fn: () => void, ms: number): { (): void; flush(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = (): void => {
    timer = undefined;
    fn();
  };
  const debounced = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
  debounced.flush = (): void => {
    if (timer === undefined) return;
    clearTimeout(timer);
    run();
  };
  return debounced;
}
