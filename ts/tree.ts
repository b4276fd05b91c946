// Nested config maps (YAML documents, flags) and how they combine: later maps win, key by key, all the way down.
export type Tree = Record<string, unknown>;
export const isTree = (x: unknown): x is Tree => typeof x === "object" && x !== null && !Array.isArray(x);

/** Deep merge: objects merge key by key, anything else replaces. */
export function merge(base: Tree, ...overrides: (Tree | undefined)[]): Tree {
  const out: Tree = { ...base };
  for (const o of overrides)
    for (const [k, v] of Object.entries(o ?? {})) {
      if (v === undefined) continue;
      out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
    }
  return out;
}
