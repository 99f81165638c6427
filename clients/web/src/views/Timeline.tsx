/**
 * The run's events under the graph, oldest first, each with its time and
 * the time since the run started; an event of a phase selects it. Follows
 * the newest event while the reader is at the bottom.
 */
import { memo, useEffect, useMemo, useRef } from "react";

import type { RunEvent } from "../gen/orchestra/v1/run_pb.js";

import { describeEvent } from "../store/describe.js";
import { useRunStore } from "../store/runStore.js";
import { timestampMs } from "../store/transitions.js";

/** Rows drawn at most: the newest, so a long run stays smooth. */
const SHOWN = 400;

/** "14:03:07.412": the local time of day to the millisecond. */
function clock(ms: number): string {
  const at = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${String(at.getMilliseconds()).padStart(3, "0")}`;
}

/** One event's row; drawn again only when its own props change. */
const TimelineRow = memo(function TimelineRow({
  event,
  title,
  created,
  onSelect,
}: {
  event: RunEvent;
  title: string;
  created: number | undefined;
  onSelect: (phaseId: string | null) => void;
}) {
  const line = describeEvent(event, () => title);
  const at = timestampMs(event.time);
  const since = at !== undefined && created !== undefined ? ((at - created) / 1000).toFixed(1) : "";
  return (
    <li data-seq={String(event.seq)}>
      <time dateTime={at === undefined ? undefined : new Date(at).toISOString()}>{at === undefined ? "" : clock(at)}</time>
      <span className="muted since">+{since} s</span>
      {line.phaseId ? (
        <button type="button" className="link" onClick={() => onSelect(line.phaseId ?? null)}>
          {line.text}
        </button>
      ) : (
        <span>{line.text}</span>
      )}
    </li>
  );
});

/** The timeline of the shown run. */
export function Timeline() {
  const history = useRunStore((s) => s.history);
  const phases = useRunStore((s) => s.snapshot?.phases);
  const created = useRunStore((s) => timestampMs(s.snapshot?.run.createdAt));
  const selectPhase = useRunStore((s) => s.selectPhase);
  const list = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const titles = useMemo(() => new Map((phases ?? []).map((p) => [p.id, p.title || p.id])), [phases]);
  const shown = history.length > SHOWN ? history.slice(history.length - SHOWN) : history;

  useEffect(() => {
    const element = list.current;
    if (element && atBottom.current) element.scrollTop = element.scrollHeight;
  }, [shown]);

  return (
    <section className="timeline" aria-label="Timeline">
      <div className="timeline-head">
        <strong>Timeline</strong>
        <span className="muted">
          {history.length === 0 ? "no events yet" : `${history.length} event${history.length === 1 ? "" : "s"}`}
          {history.length > SHOWN && `, the newest ${SHOWN} shown`}
        </span>
      </div>
      <ol
        ref={list}
        className="timeline-list"
        data-testid="timeline"
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {shown.map((event) => {
          const phaseId = event.body.case && "phaseId" in event.body.value ? event.body.value.phaseId : "";
          return (
            <TimelineRow
              key={String(event.seq)}
              event={event}
              title={titles.get(phaseId) ?? phaseId}
              created={created}
              onSelect={selectPhase}
            />
          );
        })}
      </ol>
    </section>
  );
}
