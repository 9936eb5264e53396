// The delegation tree of a mandate, drawn as an SVG graph: roots on the left, each delegation one
// column to the right, colour and label by status. Nodes are links (keyboard reachable).
import { navigate } from '../lib/router';

export interface TreeNode {
  id: string;
  parentId?: string;
  agentId: string;
  status: string;
  purpose: string;
}

const COLORS: Record<string, { fill: string; stroke: string }> = {
  active: { fill: '#dafbe1', stroke: '#1a7f37' },
  revoked: { fill: '#ffebe9', stroke: '#cf222e' },
  failed: { fill: '#ffebe9', stroke: '#cf222e' },
  completed: { fill: '#ddf4ff', stroke: '#0969da' },
  expired: { fill: '#f6f8fa', stroke: '#8c959f' },
};

const W = 230;
const H = 54;
const GAP_X = 60;
const GAP_Y = 18;

export function DelegationTree({ nodes, current }: { nodes: readonly TreeNode[]; current: string }) {
  const children = new Map<string | undefined, TreeNode[]>();
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) {
    const parent = n.parentId !== undefined && ids.has(n.parentId) ? n.parentId : undefined;
    children.set(parent, [...(children.get(parent) ?? []), n]);
  }
  // Leaves take consecutive rows; a parent sits at the middle of its children.
  const pos = new Map<string, { x: number; y: number }>();
  let row = 0;
  const place = (n: TreeNode, depth: number): number => {
    const kids = children.get(n.id) ?? [];
    let y: number;
    if (kids.length === 0) y = row++;
    else {
      const ys = kids.map((k) => place(k, depth + 1));
      y = ((ys[0] ?? 0) + (ys[ys.length - 1] ?? 0)) / 2;
    }
    pos.set(n.id, { x: depth, y });
    return y;
  };
  for (const root of children.get(undefined) ?? []) place(root, 0);
  const maxX = Math.max(0, ...[...pos.values()].map((p) => p.x));
  const width = (maxX + 1) * (W + GAP_X);
  const height = Math.max(1, row) * (H + GAP_Y);
  const at = (id: string) => {
    const p = pos.get(id) ?? { x: 0, y: 0 };
    return { x: p.x * (W + GAP_X) + 4, y: p.y * (H + GAP_Y) + 4 };
  };
  return (
    <svg
      role="img"
      aria-label={`Delegation tree with ${nodes.length} mandates`}
      viewBox={`0 0 ${width + 8} ${height + 8}`}
      width={Math.min(width + 8, 1100)}
      style={{ maxWidth: '100%', height: 'auto' }}
      data-testid="delegation-tree"
    >
      {nodes.map((n) => {
        if (n.parentId === undefined || !pos.has(n.parentId)) return null;
        const a = at(n.parentId);
        const b = at(n.id);
        const x1 = a.x + W;
        const y1 = a.y + H / 2;
        const x2 = b.x;
        const y2 = b.y + H / 2;
        const mid = (x1 + x2) / 2;
        return (
          <path
            key={`e-${n.id}`}
            d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
            fill="none"
            stroke="#8c959f"
            strokeWidth={1.5}
          />
        );
      })}
      {nodes.map((n) => {
        const { x, y } = at(n.id);
        const c = COLORS[n.status] ?? { fill: '#f6f8fa', stroke: '#8c959f' };
        const label = `${n.agentId}, ${n.status}${n.id === current ? ', this mandate' : ''}`;
        return (
          // biome-ignore lint/a11y/useSemanticElements: an SVG link; <a> inside SVG is not keyboard-focusable everywhere
          <g
            key={n.id}
            role="link"
            tabIndex={0}
            aria-label={label}
            data-status={n.status}
            data-mandate={n.id}
            style={{ cursor: 'pointer' }}
            onClick={() => navigate(`/mandates/${encodeURIComponent(n.id)}`)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault();
                navigate(`/mandates/${encodeURIComponent(n.id)}`);
              }
            }}
          >
            <title>{`${n.id}\n${n.purpose}`}</title>
            <rect x={x} y={y} width={W} height={H} rx={8} fill={c.fill} stroke={c.stroke} strokeWidth={n.id === current ? 3.5 : 1.5} />
            <text x={x + 10} y={y + 21} fontSize={13} fontWeight={600} fill="#1b1f24">
              {n.agentId.length > 28 ? `${n.agentId.slice(0, 27)}…` : n.agentId}
            </text>
            <text x={x + 10} y={y + 40} fontSize={12} fill="#57606a">
              {n.status} · {n.id.length > 18 ? `${n.id.slice(0, 17)}…` : n.id}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
