// Package archtest holds tests of the project's shape rather than its
// behaviour: which packages may reach which. It has no code of its own.
package archtest
