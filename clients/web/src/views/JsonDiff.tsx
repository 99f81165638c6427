/**
 * Two texts side by side with their differences marked, by
 * react-diff-viewer-continued (JSON-aware: values are compared as JSON,
 * so a reordered object is not a change). Loaded on first use, so the
 * first page stays small.
 */
import ReactDiffViewer, { DiffMethod } from "react-diff-viewer-continued";

import { usePrefersDark } from "./usePrefersDark.js";

/** Props of {@link JsonDiff}. */
export interface JsonDiffProps {
  left: string;
  right: string;
  leftTitle: string;
  rightTitle: string;
  /** Compare as JSON (both sides parse) or line by line. */
  json?: boolean;
  /** Side by side (wide places) or one column (the side panel). */
  split?: boolean;
}

/** The diff of `left` and `right`. */
export default function JsonDiff({ left, right, leftTitle, rightTitle, json = true, split = true }: JsonDiffProps) {
  const dark = usePrefersDark();
  return (
    <div className="json-diff" data-testid="json-diff">
      <ReactDiffViewer
        oldValue={left}
        newValue={right}
        leftTitle={leftTitle}
        rightTitle={rightTitle}
        splitView={split}
        compareMethod={json ? DiffMethod.JSON : DiffMethod.LINES}
        useDarkTheme={dark}
        disableWorker
        extraLinesSurroundingDiff={3}
      />
    </div>
  );
}
