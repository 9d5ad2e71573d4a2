/** The evaluation plots of a model version (recharts, loaded on demand): ROC, KS and the score
 * distribution by risk decile, from the gains table of its job's ml.evaluate step. */
import type { ReactNode } from "react";
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ReferenceLine, Tooltip, XAxis, YAxis } from "recharts";
import { useT } from "../i18n";
import { curvesFromGains, type Gain } from "./curves";

const W = 380;
const H = 280;
const pct = (v: number): string => `${Math.round(v * 100)}%`;

export default function ModelCharts({ gains }: { gains: Gain[] }): ReactNode {
  const t = useT();
  const c = curvesFromGains(gains);
  return (
    <div className="charts">
      <figure className="chart" data-testid="roc-plot">
        <h3>
          {t("models.roc")} (AUC ≈ {c.auc.toFixed(3)})
        </h3>
        <LineChart width={W} height={H} data={c.roc} margin={{ left: 10, bottom: 20 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="fpr" type="number" domain={[0, 1]} tickFormatter={pct} label={{ value: t("models.fpr"), position: "insideBottom", offset: -12 }} />
          <YAxis type="number" domain={[0, 1]} tickFormatter={pct} />
          <Tooltip formatter={(v) => pct(Number(v))} />
          <ReferenceLine segment={[{ x: 0, y: 0 }, { x: 1, y: 1 }]} stroke="#999" strokeDasharray="4 4" label={t("models.random")} />
          <Line dataKey="tpr" name={t("models.tpr")} stroke="#1f5fa8" isAnimationActive={false} dot />
        </LineChart>
      </figure>
      <figure className="chart" data-testid="ks-plot">
        <h3>
          {t("models.ks")} (KS = {c.ksMax.gap.toFixed(3)} @ {c.ksMax.decile})
        </h3>
        <LineChart width={W} height={H} data={c.ks} margin={{ left: 10, bottom: 20 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="decile" label={{ value: t("models.decile"), position: "insideBottom", offset: -12 }} />
          <YAxis domain={[0, 1]} tickFormatter={pct} />
          <Tooltip formatter={(v) => pct(Number(v))} />
          <Legend verticalAlign="top" />
          <ReferenceLine x={c.ksMax.decile} stroke="#b3261e" strokeDasharray="4 4" />
          <Line dataKey="bads" name={t("models.bads")} stroke="#b3261e" isAnimationActive={false} />
          <Line dataKey="goods" name={t("models.goods")} stroke="#2e7d32" isAnimationActive={false} />
        </LineChart>
      </figure>
      <figure className="chart" data-testid="dist-plot">
        <h3>{t("models.dist")}</h3>
        <BarChart width={W} height={H} data={c.distribution} margin={{ left: 10, bottom: 20 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="decile" label={{ value: t("models.decile"), position: "insideBottom", offset: -12 }} />
          <YAxis allowDecimals={false} />
          <Tooltip />
          <Legend verticalAlign="top" />
          <Bar dataKey="goods" stackId="rows" name={t("models.goods")} fill="#7fb77e" isAnimationActive={false} />
          <Bar dataKey="bads" stackId="rows" name={t("models.bads")} fill="#d9534f" isAnimationActive={false} />
        </BarChart>
      </figure>
    </div>
  );
}
