// GitHub Actions workflow commands (`::warning file=…,line=…::message`) that pin findings to lines of a file in the
// Actions UI. The runner splits commands on newlines and properties on `,` and `:`, hence the escaping.

export type AnnotationLevel = 'error' | 'warning' | 'notice';

export interface Annotation {
  level: AnnotationLevel;
  message: string;
  title?: string;
  file?: string;
  line?: number;
}

/** Escapes a command's message: the runner decodes %25, %0D, %0A back. */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escapes a property value, where `:` ends the properties and `,` separates them. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** One workflow command line (no trailing newline). */
export function formatAnnotation(a: Annotation): string {
  const props: string[] = [];
  if (a.file !== undefined) props.push(`file=${escapeProperty(a.file)}`);
  if (a.line !== undefined) props.push(`line=${a.line}`);
  if (a.title !== undefined) props.push(`title=${escapeProperty(a.title)}`);
  return `::${a.level}${props.length > 0 ? ' ' + props.join(',') : ''}::${escapeData(a.message)}`;
}
