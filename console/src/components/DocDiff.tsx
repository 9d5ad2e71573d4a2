/** A readable line diff of two JDM documents (pretty-printed JSON), added and removed lines only
 * with a little context, so a reviewer sees exactly which cut-off or rule changed. */
import { diffLines } from "diff";
import type { ReactNode } from "react";

export interface DiffLine {
  kind: "+" | "-" | " ";
  text: string;
}

export function docDiff(before: unknown, after: unknown, context = 2): DiffLine[] {
  const parts = diffLines(JSON.stringify(before, null, 1), JSON.stringify(after, null, 1));
  const lines: DiffLine[] = [];
  for (const part of parts) {
    const kind: DiffLine["kind"] = part.added ? "+" : part.removed ? "-" : " ";
    const texts = part.value.replace(/\n$/, "").split("\n");
    if (kind === " " && texts.length > 2 * context) {
      lines.push(...texts.slice(0, context).map((text) => ({ kind, text })));
      lines.push({ kind, text: "…" });
      lines.push(...texts.slice(-context).map((text) => ({ kind, text })));
    } else {
      lines.push(...texts.map((text) => ({ kind, text })));
    }
  }
  return lines;
}

export function DocDiff({ before, after, caption }: { before: unknown; after: unknown; caption: string }): ReactNode {
  const lines = docDiff(before, after);
  return (
    <figure className="diff" data-testid="diff">
      <figcaption>{caption}</figcaption>
      <pre className="log">
        {lines.map((l, i) => (
          <div key={i} className={l.kind === "+" ? "add" : l.kind === "-" ? "del" : undefined}>
            {l.kind} {l.text}
          </div>
        ))}
      </pre>
    </figure>
  );
}
