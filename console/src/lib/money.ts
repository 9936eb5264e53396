// Money amounts: an integer count of minor units shown in its currency (24900 USD cents as
// $249.00). Pure, so it is tested outside the browser (test/console/console-lib.test.ts). The raw
// integer stays what policy and budgets compare.

export interface AmountHint {
  /** ISO 4217 code. */
  readonly currency: string;
  /** Digits after the decimal point the integer stands for. */
  readonly minorUnits: number;
}

/**
 * `value` minor units as money, or undefined when it is not a safe integer. Built from the digits
 * (no floating-point division), so 24900 with 2 minor units is exactly "249.00".
 */
export function formatAmount(value: unknown, hint: AmountHint, locale?: string): string | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return undefined;
  const digits = String(Math.abs(value)).padStart(hint.minorUnits + 1, '0');
  const whole = digits.slice(0, digits.length - hint.minorUnits);
  const frac = digits.slice(digits.length - hint.minorUnits);
  const decimal = `${value < 0 ? '-' : ''}${whole}${hint.minorUnits > 0 ? `.${frac}` : ''}`;
  try {
    return new Intl.NumberFormat(locale ?? 'en-US', {
      style: 'currency',
      currency: hint.currency,
      minimumFractionDigits: hint.minorUnits,
      maximumFractionDigits: hint.minorUnits,
      // A decimal string keeps every digit (Intl.NumberFormat v3).
    }).format(decimal as unknown as number);
  } catch {
    return `${decimal} ${hint.currency}`;
  }
}
