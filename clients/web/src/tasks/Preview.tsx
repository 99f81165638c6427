/**
 * One candidate's preview page, in an iframe that can do nothing but show
 * it: `sandbox` without `allow-same-origin` or `allow-scripts` (a unique
 * origin, no scripts, no forms, no top navigation), the page given as
 * `srcdoc` (never inserted into this app's own document), and a strict
 * Content-Security-Policy put first in its head.
 */
import { useMemo } from "react";

import { sandboxedDocument } from "./review.js";

/** The preview of `name`. */
export function Preview({ name, html }: { name: string; html: string }) {
  const doc = useMemo(() => sandboxedDocument(html), [html]);
  return (
    <iframe
      className="preview"
      title={`Preview of ${name}`}
      sandbox=""
      srcDoc={doc}
      referrerPolicy="no-referrer"
      loading="lazy"
      data-testid={`preview-${name}`}
    />
  );
}
