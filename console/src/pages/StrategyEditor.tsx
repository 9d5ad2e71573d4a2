/** GoRules' JDM editor (npm @gorules/jdm-editor), loaded on demand: what staff draw is the
 * JDM document zen-engine runs on the node. */
import { DecisionGraph, JdmConfigProvider, type DecisionGraphType } from "@gorules/jdm-editor";
import "@gorules/jdm-editor/dist/style.css";
import type { ReactNode } from "react";

export default function StrategyEditor(props: {
  value: Record<string, unknown>;
  onChange: (doc: Record<string, unknown>) => void;
  disabled: boolean;
}): ReactNode {
  return (
    <JdmConfigProvider>
      <div className="jdm" data-testid="jdm-editor">
        <DecisionGraph
          value={props.value as unknown as DecisionGraphType}
          disabled={props.disabled}
          onChange={(graph) => props.onChange(graph as unknown as Record<string, unknown>)}
        />
      </div>
    </JdmConfigProvider>
  );
}
