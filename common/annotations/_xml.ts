/**
 * A small, strict XML reader and writer for the annotation formats that use XML (Pascal VOC files
 * and Label Studio label configs): elements, attributes, text, comments, CDATA, the XML
 * declaration and the five predefined entities plus numeric character references. No DTDs, no
 * namespaces beyond keeping `a:b` names as they are.
 *
 * @example
 * ```ts
 * const root = parseXml("<a x='1'><b>hi</b></a>");
 * root.children[0].name; // "b"
 * ```
 * @module
 */

/** One element. `text` is the concatenated text directly inside it (not in children). */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** The document is not well-formed; `offset` is the character position of the problem. */
export class XmlSyntaxError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at character ${offset}`);
    this.name = "XmlSyntaxError";
    this.offset = offset;
  }
}

const NAME = /[A-Za-z_:][A-Za-z0-9_.:-]*/y;

function decodeEntities(s: string, at: number): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);?/g, (m, body: string) => {
    if (!m.endsWith(";")) throw new XmlSyntaxError(`unterminated entity ${m}`, at);
    if (body.startsWith("#x")) return String.fromCodePoint(parseInt(body.slice(2), 16));
    if (body.startsWith("#")) return String.fromCodePoint(parseInt(body.slice(1), 10));
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (!(body in named)) throw new XmlSyntaxError(`unknown entity &${body};`, at);
    return named[body];
  });
}

/**
 * Parses a document and returns its root element. Throws {@link XmlSyntaxError} when the text is
 * not well-formed (mismatched tags, a second root, stray text outside the root).
 *
 * @example
 * ```ts
 * parseXml("<size><width>640</width></size>").children[0].text; // "640"
 * ```
 */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const fail = (msg: string): never => {
    throw new XmlSyntaxError(msg, i);
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    const chunk = text.slice(i, lt === -1 ? text.length : lt);
    if (chunk.length > 0) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(chunk, i);
      else if (chunk.trim() !== "") fail("expected markup, found text outside the root element");
    }
    if (lt === -1) break;
    i = lt;
    if (text.startsWith("<!--", i)) {
      const end = text.indexOf("-->", i + 4);
      if (end === -1) fail("unterminated comment");
      i = end + 3;
    } else if (text.startsWith("<![CDATA[", i)) {
      const end = text.indexOf("]]>", i + 9);
      if (end === -1) fail("unterminated CDATA section");
      const top = stack[stack.length - 1];
      if (!top) fail("CDATA outside the root element");
      top.text += text.slice(i + 9, end);
      i = end + 3;
    } else if (text.startsWith("<?", i)) {
      const end = text.indexOf("?>", i + 2);
      if (end === -1) fail("unterminated processing instruction");
      i = end + 2;
    } else if (text.startsWith("<!", i)) {
      const end = text.indexOf(">", i + 2);
      if (end === -1) fail("unterminated declaration");
      i = end + 1;
    } else if (text.startsWith("</", i)) {
      NAME.lastIndex = i + 2;
      const m = NAME.exec(text);
      if (!m) fail("expected a closing tag name");
      const name = m![0];
      const top = stack.pop();
      if (!top || top.name !== name) {
        fail(`expected </${top?.name ?? "(none)"}>, found </${name}>`);
      }
      i = NAME.lastIndex;
      while (/\s/.test(text[i] ?? "")) i++;
      if (text[i] !== ">") fail(`expected ">" to close </${name}>`);
      i++;
    } else {
      NAME.lastIndex = i + 1;
      const m = NAME.exec(text);
      if (!m) fail("expected an element name after <");
      const el: XmlElement = { name: m![0], attributes: {}, children: [], text: "" };
      i = NAME.lastIndex;
      let selfClosing = false;
      for (;;) {
        while (/\s/.test(text[i] ?? "")) i++;
        if (text.startsWith("/>", i)) {
          selfClosing = true;
          i += 2;
          break;
        }
        if (text[i] === ">") {
          i++;
          break;
        }
        if (i >= text.length) fail(`unterminated start tag <${el.name}`);
        NAME.lastIndex = i;
        const a = NAME.exec(text);
        if (!a) fail(`expected an attribute name in <${el.name}>`);
        i = NAME.lastIndex;
        while (/\s/.test(text[i] ?? "")) i++;
        if (text[i] !== "=") fail(`expected "=" after attribute ${a![0]}`);
        i++;
        while (/\s/.test(text[i] ?? "")) i++;
        const q = text[i];
        if (q !== '"' && q !== "'") fail(`expected a quoted value for attribute ${a![0]}`);
        const end = text.indexOf(q, i + 1);
        if (end === -1) fail(`unterminated value of attribute ${a![0]}`);
        if (Object.hasOwn(el.attributes, a![0])) fail(`duplicate attribute ${a![0]}`);
        el.attributes[a![0]] = decodeEntities(text.slice(i + 1, end), i);
        i = end + 1;
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail("expected one root element, found a second");
      else root = el;
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length > 0) fail(`unclosed element <${stack[stack.length - 1].name}>`);
  if (!root) fail("expected a root element, found none");
  return root!;
}

/** Escapes text or an attribute value. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Child elements with a given name. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** The first child with a given name, or undefined. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/** Every element below `el` (depth first, document order), `el` excluded. */
export function descendants(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    for (const c of e.children) {
      out.push(c);
      walk(c);
    }
  };
  walk(el);
  return out;
}
