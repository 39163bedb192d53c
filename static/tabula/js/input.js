// What a user types into a cell, read as spreadsheets read it: a number is a number, TRUE and FALSE
// are booleans, text starting with "=" is a formula, a leading apostrophe keeps the rest as text ('42
// is the text 42, '=A1 the text =A1); and back: the text a cell's editor starts with, so that opening
// and closing the editor never changes what a cell holds.

import { isError, isTypedFormula } from "./formulas.js";

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * The value of typed (or pasted) text: a number, a boolean, text, a formula ({formula: text}, which
 * the server computes), or null for nothing. A number that
 * does not fit a double exactly as an integer (more than 15 or so digits, a card number, say) stays
 * text, as the digits typed are what was meant.
 */
export function typedValue(text) {
  if (typeof text !== "string") return text;
  if (text === "") return null;
  if (text.startsWith("'")) return text.slice(1) === "" ? null : text.slice(1);
  if (text.startsWith("=") && text.length > 1) return { formula: text };
  const trimmed = text.trim();
  if (NUMBER.test(trimmed)) {
    const number = Number(trimmed);
    if (Number.isFinite(number) && !(Number.isInteger(number) && !Number.isSafeInteger(number))) return number;
    return text;
  }
  const upper = trimmed.toUpperCase();
  if (upper === "TRUE" || upper === "FALSE") return upper === "TRUE";
  return text;
}

/**
 * The text an editor opens with for a cell's value: text that would be read as something else (a
 * number, a boolean, or a formula: it starts with "=") gets its apostrophe.
 */
export function editorText(value) {
  if (value === null || value === undefined) return "";
  if (isTypedFormula(value)) return value.formula;
  if (isError(value)) return value.error;
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (typeof value === "string") return typedValue(value) === value && !value.startsWith("=") ? value : `'${value}`;
  return String(value);
}

/** How a value shows in the grid: booleans as TRUE and FALSE, an error by its code, a formula not yet computed as typed. */
export function shownText(value) {
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (isError(value)) return value.error;
  if (isTypedFormula(value)) return value.formula;
  return value;
}
