// One rule for the letters in an avatar, shared by every page, so a person shows the same
// initials in the chat app, the support console and the visitor's chat.

/** The first letters of the first and last word of ``name`` ("Alice Example" -> "AE");
 * a one-word name gives its first two letters ("alice" -> "AL"). A sip or address counts
 * by its part before "@", with dots, dashes and underscores as word breaks. */
export function initials(name) {
  const local = String(name || "").trim().split("@")[0];
  const words = local.split(/[\s._-]+/).filter(Boolean);
  if (words.length === 0) return "?";
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : [...words[0]].slice(0, 2).join("");
  return letters.toUpperCase();
}
