// The tool catalog's display hints (`x-mandate-amount` on an argument of the upstream's input
// schema), loaded once per page load from GET /admin/v1/console/hints.
import { useEffect, useState } from 'react';
import { api } from './api';
import type { AmountHint } from './money';

export { type AmountHint, formatAmount } from './money';

type Hints = Readonly<Record<string, { readonly amountArgs: Readonly<Record<string, AmountHint>> }>>;

let hintsPromise: Promise<Hints> | undefined;

function loadHints(): Promise<Hints> {
  hintsPromise ??= api<{ tools: Hints }>('/admin/v1/console/hints').then(
    (b) => b.tools,
    () => {
      hintsPromise = undefined; // try again on the next render that needs them
      return {};
    },
  );
  return hintsPromise;
}

/** The amount arguments of `tool` (empty while loading or when it declares none). */
export function useAmountArgs(tool: string | undefined): Readonly<Record<string, AmountHint>> {
  const [hints, setHints] = useState<Hints>({});
  useEffect(() => {
    let live = true;
    void loadHints().then((h) => live && setHints(h));
    return () => {
      live = false;
    };
  }, []);
  return (tool === undefined ? undefined : hints[tool]?.amountArgs) ?? {};
}
