/** ROC, KS and score-distribution points from an evaluation's gains table (ml.evaluate's
 * report.json: deciles riskiest first with rows and bads). The node keeps no per-row scores
 * in the report, so the curves have one point per decile: exact at the decile edges. */

export interface Gain {
  decile: number;
  rows: number;
  bads: number;
  bad_rate: number;
  cum_bad_share: number;
  ks: number;
}

export interface Curves {
  roc: { fpr: number; tpr: number }[];
  ks: { decile: number; bads: number; goods: number; gap: number }[];
  distribution: { decile: number; goods: number; bads: number; badRate: number }[];
  ksMax: { decile: number; gap: number };
  auc: number;
}

export function curvesFromGains(gains: Gain[]): Curves {
  const totalBad = gains.reduce((n, g) => n + g.bads, 0);
  const totalGood = gains.reduce((n, g) => n + g.rows - g.bads, 0);
  if (totalBad === 0 || totalGood === 0) throw new Error("the gains table needs both goods and bads");
  let cumBad = 0;
  let cumGood = 0;
  const roc = [{ fpr: 0, tpr: 0 }];
  const ks = [{ decile: 0, bads: 0, goods: 0, gap: 0 }];
  const distribution: Curves["distribution"] = [];
  for (const g of gains) {
    cumBad += g.bads;
    cumGood += g.rows - g.bads;
    const tpr = cumBad / totalBad;
    const fpr = cumGood / totalGood;
    roc.push({ fpr, tpr });
    ks.push({ decile: g.decile, bads: tpr, goods: fpr, gap: Math.abs(tpr - fpr) });
    distribution.push({ decile: g.decile, goods: g.rows - g.bads, bads: g.bads, badRate: g.rows ? g.bads / g.rows : 0 });
  }
  let auc = 0;
  for (let i = 1; i < roc.length; i++) auc += ((roc[i].fpr - roc[i - 1].fpr) * (roc[i].tpr + roc[i - 1].tpr)) / 2;
  const top = ks.reduce((best, p) => (p.gap > best.gap ? p : best), ks[0]);
  return { roc, ks, distribution, ksMax: { decile: top.decile, gap: top.gap }, auc };
}
