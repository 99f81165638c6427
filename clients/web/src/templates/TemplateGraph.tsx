/**
 * A template's phases drawn as the DAG a run of it will follow: the run
 * graph's layout, each node with its title, kind and output.
 */
import { Background, Controls, Handle, type Node, type NodeProps, type NodeTypes, Position, ReactFlow } from "@xyflow/react";
import { memo, useMemo } from "react";

import type { PhaseDefinition } from "../gen/orchestra/v1/template_pb.js";
import { layoutPhases } from "../views/layout.js";
import { kindLabel } from "../views/phaseStyle.js";
import { definitionPhases } from "./spec.js";

type DefinitionNode = Node<{ definition: PhaseDefinition }, "definition">;

const DefinitionView = memo(function DefinitionView({ data }: NodeProps<DefinitionNode>) {
  const { definition } = data;
  return (
    <div className="phase-node definition" data-testid={`definition-${definition.id}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="phase-title" title={definition.id}>
        {definition.title || definition.id}
      </div>
      <div className="phase-meta">
        <span className="phase-kind">{kindLabel(definition.kind)}</span>
      </div>
      <div className="phase-foot">
        {definition.outputName ? <span className="muted">→ {definition.outputName}</span> : <span className="muted">no output</span>}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const NODE_TYPES: NodeTypes = { definition: DefinitionView };

/** The graph of `definitions`. */
export function TemplateGraph({ definitions }: { definitions: PhaseDefinition[] }) {
  const layout = useMemo(() => layoutPhases(definitionPhases(definitions)), [definitions]);
  const nodes: DefinitionNode[] = useMemo(
    () =>
      definitions.map((definition) => ({
        id: definition.id,
        type: "definition",
        position: layout.positions.get(definition.id) ?? { x: 0, y: 0 },
        data: { definition },
        draggable: false,
      })),
    [definitions, layout],
  );
  return (
    <div className="template-graph" data-testid="template-graph">
      <ReactFlow
        key={definitions.map((d) => d.id).join()}
        nodes={nodes}
        edges={layout.edges}
        nodeTypes={NODE_TYPES}
        nodesConnectable={false}
        fitView
        fitViewOptions={{ padding: 0.12, maxZoom: 1, minZoom: 0.1 }}
        minZoom={0.1}
        colorMode="system"
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
