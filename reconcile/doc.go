// Package reconcile computes and applies the changes that bring Asset Panda
// in step with Active Directory.
//
// The flow is plan, then apply, as in Terraform:
//
//   - MakePlan reads the directory (DirectoryReader) and Asset Panda
//     (TargetReader), computes the desired state from the spec set and
//     returns a Plan: a plain, serializable value listing per object the
//     action, the fields before and after, and the reason. Deactivations
//     that a safety limit or guard stops are listed in Plan.Blocked and
//     never applied. MakePlan never writes and never prints.
//   - Apply executes exactly a plan's changes through a TargetWriter,
//     re-checking every object against the plan's Before first, and
//     reports progress through an Observer.
//
// Only objects pandasync manages are ever changed: records whose key field
// holds a SID, and users carrying the AD SID. A user matched by email only
// is adopted (its SID is set) by an update the plan marks as such.
//
// The interfaces are the package's view of its providers; the concrete
// types in providers/activedirectory and providers/assetpanda implement
// them.
package reconcile
