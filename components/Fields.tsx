/**
 * Labelled form fields with their error next to them (aria-invalid + aria-describedby), so a
 * screen reader hears what is wrong where it is wrong.
 */
import type { ComponentChildren } from "preact";

/** A form name ("writeBack.fields.billId") as an element id. */
export function fieldId(name: string): string {
  return `f-${name.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

export interface FieldBase {
  name: string;
  label: string;
  hint?: ComponentChildren;
  errors?: string[];
}

function Described({ name, hint, errors }: Omit<FieldBase, "label">) {
  const id = fieldId(name);
  return (
    <>
      {hint ? <p class="hint" id={`${id}-hint`}>{hint}</p> : null}
      {errors?.length
        ? (
          <p class="field-error" id={`${id}-err`}>
            {errors.join(" ")}
          </p>
        )
        : null}
    </>
  );
}

function describedBy({ name, hint, errors }: Omit<FieldBase, "label">): string | undefined {
  const id = fieldId(name);
  const ids = [hint ? `${id}-hint` : "", errors?.length ? `${id}-err` : ""].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

export function TextField(
  props: FieldBase & {
    value: string;
    type?: "text" | "number" | "url";
    required?: boolean;
    min?: number;
    max?: number;
    pattern?: string;
    inputmode?: "numeric" | "decimal";
    size?: "short" | "long";
  },
) {
  const id = fieldId(props.name);
  return (
    <div class={`field ${props.size ?? ""}`}>
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? "text"}
        value={props.value}
        required={props.required}
        min={props.min}
        max={props.max}
        pattern={props.pattern}
        inputMode={props.inputmode}
        aria-invalid={props.errors?.length ? "true" : undefined}
        aria-describedby={describedBy(props)}
      />
      <Described {...props} />
    </div>
  );
}

export interface Option {
  value: string;
  label: string;
}

export function SelectField(
  props: FieldBase & { value: string; options: Option[]; required?: boolean },
) {
  const id = fieldId(props.name);
  // A stored value the list does not offer (deleted in Xero, typed before) stays selectable.
  const options = props.value && !props.options.some((o) => o.value === props.value)
    ? [{ value: props.value, label: `${props.value} (not found in Xero)` }, ...props.options]
    : props.options;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select
        id={id}
        name={props.name}
        required={props.required}
        aria-invalid={props.errors?.length ? "true" : undefined}
        aria-describedby={describedBy(props)}
      >
        {options.map((o) => (
          <option value={o.value} selected={o.value === props.value}>{o.label}</option>
        ))}
      </select>
      <Described {...props} />
    </div>
  );
}

export function CheckboxField(props: FieldBase & { checked: boolean }) {
  const id = fieldId(props.name);
  return (
    <div class="field checkbox">
      <input
        id={id}
        name={props.name}
        type="checkbox"
        checked={props.checked}
        aria-describedby={describedBy(props)}
      />
      <label for={id}>{props.label}</label>
      <Described {...props} />
    </div>
  );
}
