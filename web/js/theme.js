// @ts-check
// Light or dark: the device's setting by default, or what the member chose on this device.
// The choice resolves to `data-theme` on the root element, which style.css reads.

const STORAGE_KEY = 'bocage.theme';
export const THEMES = /** @type {const} */ (['auto', 'light', 'dark']);
const DARK = '(prefers-color-scheme: dark)';

/** @returns {'auto' | 'light' | 'dark'} */
export function chosenTheme() {
  try {
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
    return THEMES.find((x) => x === saved) || 'auto';
  } catch {
    return 'auto';
  }
}

/** Apply the chosen theme now, and follow the device's setting while it is "auto". */
export function applyTheme() {
  const choice = chosenTheme();
  const dark = choice === 'dark' || (choice === 'auto' && Boolean(globalThis.matchMedia?.(DARK).matches));
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

/** @param {'auto' | 'light' | 'dark'} choice */
export function chooseTheme(choice) {
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, choice);
  } catch {
    // not remembered: applies to this visit
  }
  applyTheme();
}

globalThis.matchMedia?.(DARK).addEventListener?.('change', applyTheme);
applyTheme();
